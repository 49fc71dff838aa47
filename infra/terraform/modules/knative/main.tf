# Knative through the Knative Operator, all in the "platform" stage: the operator's Helm chart (which
# installs the KnativeServing/KnativeEventing CRDs), then a small local chart with the two instances.
# helm_release does not need CRDs at plan time; the functions (Knative Services, Triggers) come in the
# second stage, "apps", once the operator has created the Knative CRDs (see ../../README.md).
terraform {
  required_providers {
    helm = { source = "hashicorp/helm", version = ">= 2.12" }
  }
}

resource "helm_release" "operator" {
  name             = "knative-operator"
  repository       = "https://knative.github.io/operator"
  chart            = "knative-operator"
  version          = var.knative_version
  namespace        = "knative-operator"
  create_namespace = true
}

resource "helm_release" "instances" {
  name       = "knative-instances"
  chart      = "${path.module}/chart"
  namespace  = "knative-operator"
  depends_on = [helm_release.operator]

  values = [yamlencode({
    version     = var.knative_version
    kafkaBroker = var.kafka_broker
  })]
}
