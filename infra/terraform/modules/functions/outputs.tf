output "resources" {
  description = "Ids of the Kubernetes resources deployed"
  value       = sort(tolist(data.kustomization_overlay.functions.ids))
}
