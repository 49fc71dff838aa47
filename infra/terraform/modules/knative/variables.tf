variable "knative_version" {
  description = "Knative release installed by the operator"
  type        = string
  default     = "1.16.0"
}

variable "kafka_broker" {
  description = "Enable the Kafka-backed broker (production)"
  type        = bool
  default     = false
}
