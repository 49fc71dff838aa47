# Stage 1 of 2 (staging): the engine and the state store — Knative (operator + instances), Redis, the collector.
terraform {
  required_version = ">= 1.6"
  required_providers {
    helm = { source = "hashicorp/helm", version = ">= 2.12" }
  }
  backend "kubernetes" {
    secret_suffix = "dvci-staging-platform" # checkov:skip=CKV_SECRET_6: the name of the state Secret, not a secret value
  }
}

provider "helm" {
  kubernetes {
    config_path    = var.kubeconfig
    config_context = var.kube_context
  }
}

module "knative" {
  source          = "../../../modules/knative"
  knative_version = var.knative_version
  kafka_broker    = false
}

module "redis" {
  source           = "../../../modules/redis"
  namespace        = var.namespace
  auth_secret_name = var.redis_auth_secret
  replicas         = 1
  storage_size     = var.redis_storage_size
}

module "observability" {
  source                      = "../../../modules/observability"
  traces_endpoint             = var.traces_endpoint
  prometheus_remote_write_url = var.prometheus_remote_write_url
}
