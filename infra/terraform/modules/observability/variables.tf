variable "chart_version" {
  type    = string
  default = "0.111.0"
}

variable "traces_endpoint" {
  description = "OTLP/HTTP endpoint of the tracing backend (Tempo, Jaeger...)"
  type        = string
}

variable "prometheus_remote_write_url" {
  type = string
}
