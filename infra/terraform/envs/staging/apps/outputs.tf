output "resources" {
  value = module.functions.resources
}
