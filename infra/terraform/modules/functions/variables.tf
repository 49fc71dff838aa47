variable "overlay_path" {
  description = "The kustomize overlay of the environment (infra/knative/overlays/<env>)"
  type        = string
}

variable "namespace" {
  type    = string
  default = "dvci"
}

variable "image_tag" {
  description = "Tag of dvci/functions to deploy (never latest)"
  type        = string
  validation {
    condition     = var.image_tag != "latest" && length(var.image_tag) > 0
    error_message = "image_tag must name a release, not latest."
  }
}

variable "canary_percent" {
  description = "Share of traffic for the latest revision (0 = none; 100 = all: blue-green switch)"
  type        = number
  default     = 0
  validation {
    condition     = var.canary_percent >= 0 && var.canary_percent <= 100
    error_message = "canary_percent is between 0 and 100."
  }
}

variable "stable_revision" {
  description = "Revision that keeps the rest of the traffic during a canary (e.g. send-sms-00007)"
  type        = string
  default     = ""
}

variable "canary_services" {
  description = "Services the canary applies to"
  type        = set(string)
  default     = ["send-sms"]
}

variable "max_scale" {
  description = "Upper replica bound per Service"
  type        = map(number)
  default     = {}
}
