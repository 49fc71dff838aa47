output "otlp_endpoint" {
  value = "http://otel-collector.observability:4318"
}
