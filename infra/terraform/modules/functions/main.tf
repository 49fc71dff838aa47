# Every function, Broker and Trigger from the same YAML as infra/knative/ (one source of truth): the
# environment's kustomize overlay is built here with the image tag, and with a canary traffic split when
# `canary_percent` > 0 (blue-green: 0 or 100).
terraform {
  required_providers {
    kustomization = { source = "kbst/kustomization", version = ">= 0.9" }
  }
}

locals {
  canary = var.canary_percent > 0 && var.canary_percent < 100
  traffic_patch = <<-EOT
    - op: add
      path: /spec/traffic
      value:
        - {revisionName: ${var.stable_revision}, percent: ${100 - var.canary_percent}, tag: stable}
        - {latestRevision: true, percent: ${var.canary_percent}, tag: canary}
  EOT
}

data "kustomization_overlay" "functions" {
  namespace = var.namespace
  resources = [var.overlay_path]

  images {
    name    = "dvci/functions"
    new_tag = var.image_tag
  }

  images {
    name    = "dvci/functions-signing" # sign_document (built with EXTRAS=signing)
    new_tag = var.image_tag
  }

  dynamic "patches" {
    for_each = local.canary ? var.canary_services : []
    content {
      target {
        kind = "Service"
        name = patches.value
      }
      patch = local.traffic_patch
    }
  }

  dynamic "patches" {
    for_each = var.max_scale
    content {
      target {
        kind = "Service"
        name = patches.key
      }
      patch = <<-EOT
        - op: replace
          path: /spec/template/metadata/annotations/autoscaling.knative.dev~1max-scale
          value: "${patches.value}"
      EOT
    }
  }
}

# CRDs and namespaces first, then everything else (kbst's documented ordering)
resource "kustomization_resource" "p0" {
  for_each = data.kustomization_overlay.functions.ids_prio[0]
  manifest = data.kustomization_overlay.functions.manifests[each.value]
}

resource "kustomization_resource" "p1" {
  for_each   = data.kustomization_overlay.functions.ids_prio[1]
  manifest   = data.kustomization_overlay.functions.manifests[each.value]
  depends_on = [kustomization_resource.p0]
}

resource "kustomization_resource" "p2" {
  for_each   = data.kustomization_overlay.functions.ids_prio[2]
  manifest   = data.kustomization_overlay.functions.manifests[each.value]
  depends_on = [kustomization_resource.p1]
}
