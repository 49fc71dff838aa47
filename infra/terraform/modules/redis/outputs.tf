output "service_host" {
  description = "Host of the Redis master service, for REDIS_URL"
  value       = "dvci-redis-master.${var.namespace}.svc"
}
