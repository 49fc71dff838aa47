# The OpenTelemetry Collector, configured by infra/observability/otel-collector.yaml (one source).
terraform {
  required_providers {
    helm = { source = "hashicorp/helm", version = ">= 2.12" }
  }
}

resource "helm_release" "collector" {
  name             = "otel-collector"
  repository       = "https://open-telemetry.github.io/opentelemetry-helm-charts"
  chart            = "opentelemetry-collector"
  version          = var.chart_version
  namespace        = "observability"
  create_namespace = true

  values = [yamlencode({
    mode   = "deployment"
    image  = { repository = "otel/opentelemetry-collector-contrib" }
    config = yamldecode(file("${path.module}/../../../observability/otel-collector.yaml"))
    extraEnvs = [
      { name = "TRACES_BACKEND_ENDPOINT", value = var.traces_endpoint },
      { name = "PROMETHEUS_REMOTE_WRITE_URL", value = var.prometheus_remote_write_url },
    ]
  })]
}
