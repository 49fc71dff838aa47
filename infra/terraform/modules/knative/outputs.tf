output "operator_release" {
  value = helm_release.operator.name
}

output "broker_class" {
  value = var.kafka_broker ? "Kafka" : "MTChannelBasedBroker"
}
