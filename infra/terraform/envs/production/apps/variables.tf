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

variable "image_tag" {
  description = "Release of dvci/functions to run"
  type        = string
}

variable "canary_percent" {
  description = "Traffic share of the new revision of send-sms (0 none, 100 blue-green switch)"
  type        = number
  default     = 0
}

variable "stable_revision" {
  type    = string
  default = ""
}

variable "max_scale" {
  description = "Upper replica bound per Service"
  type        = map(number)
  default     = { "send-sms" = 20, "dead-letter" = 3 }
}
