variable "namespace" {
  type    = string
  default = "dvci"
}

variable "chart_version" {
  type    = string
  default = "20.6.2"
}

variable "auth_secret_name" {
  description = "Secret holding `redis-password` (created out of band; never in Terraform state)"
  type        = string
}

variable "tls_secret_name" {
  description = "Secret with the Redis TLS certificate; null lets the chart generate one"
  type        = string
  default     = null
}

variable "replicas" {
  type    = number
  default = 2
}

variable "storage_size" {
  type    = string
  default = "8Gi"
}

variable "memory_limit" {
  type    = string
  default = "2Gi"
}
