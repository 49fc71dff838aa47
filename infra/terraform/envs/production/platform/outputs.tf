output "redis_host" {
  value = module.redis.service_host
}

output "broker_class" {
  value = module.knative.broker_class
}

output "otlp_endpoint" {
  value = module.observability.otlp_endpoint
}
