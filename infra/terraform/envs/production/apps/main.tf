# Stage 2 of 2 (production): the functions, Broker and Triggers of infra/knative/overlays/production (same YAML as dvci dev).
terraform {
  required_version = ">= 1.6"
  required_providers {
    kustomization = { source = "kbst/kustomization", version = ">= 0.9" }
  }
  backend "kubernetes" {
    secret_suffix = "dvci-production-apps" # checkov:skip=CKV_SECRET_6: the name of the state Secret, not a secret value
  }
}

provider "kustomization" {
  kubeconfig_path = var.kubeconfig
  context         = var.kube_context
}

module "functions" {
  source          = "../../../modules/functions"
  overlay_path    = "${path.module}/../../../../knative/overlays/production"
  namespace       = var.namespace
  image_tag       = var.image_tag
  canary_percent  = var.canary_percent
  stable_revision = var.stable_revision
  max_scale       = var.max_scale
}
