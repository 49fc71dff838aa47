variable "kubeconfig" {
  type    = string
  default = "~/.kube/config"
}

variable "kube_context" {
  type = string
}

variable "namespace" {
  type    = string
  default = "dvci"
}

variable "knative_version" {
  type    = string
  default = "1.16.0"
}

variable "redis_auth_secret" {
  description = "Secret (in the namespace) with key redis-password, created before the apply"
  type        = string
  default     = "dvci-redis"
}

variable "redis_storage_size" {
  type    = string
  default = "8Gi"
}

variable "traces_endpoint" {
  type = string
}

variable "prometheus_remote_write_url" {
  type = string
}
