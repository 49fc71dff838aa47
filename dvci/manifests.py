"""Reading the Knative manifests of `infra/knative/` into the local broker's routing table.

The same files are deployed: the local broker applies their Trigger filters and delivery specs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_DURATION = re.compile(r"^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def iso_duration(text: str) -> float:
    """Seconds in an ISO-8601 duration (`PT0.5S`, `PT1M30S`, `P1D`)."""
    m = _DURATION.match(text or "")
    if not m or text in ("P", "PT"):
        raise ValueError(f"not an ISO-8601 duration: {text!r}")
    d, h, mi, s = (float(x) if x else 0.0 for x in m.groups())
    return d * 86400 + h * 3600 + mi * 60 + s


@dataclass(frozen=True)
class Delivery:
    """Knative `spec.delivery`: retries after the first attempt, backoff, per-attempt timeout, DLS."""

    retry: int = 0
    backoff_policy: str = "exponential"
    backoff_delay_s: float = 0.2
    timeout_s: float | None = None
    dead_letter_sink: dict[str, Any] | None = None

    @classmethod
    def parse(cls, spec: dict[str, Any] | None, base: Delivery | None = None) -> Delivery:
        base = base or cls()
        if not spec:
            return base
        return cls(
            retry=int(spec.get("retry", base.retry)),
            backoff_policy=spec.get("backoffPolicy", base.backoff_policy),
            backoff_delay_s=iso_duration(spec["backoffDelay"]) if "backoffDelay" in spec else base.backoff_delay_s,
            timeout_s=iso_duration(spec["timeout"]) if "timeout" in spec else base.timeout_s,
            dead_letter_sink=spec.get("deadLetterSink", base.dead_letter_sink),
        )

    def backoff(self, retry_number: int) -> float:
        """Delay before retry `retry_number` (1-based): exponential d·2^(n-1); linear d·(n-1)."""
        if self.backoff_policy == "linear":
            return self.backoff_delay_s * (retry_number - 1)
        return self.backoff_delay_s * (2 ** (retry_number - 1))


@dataclass(frozen=True)
class TriggerSpec:
    name: str
    broker: str
    filter_attributes: dict[str, str]
    filters: list[dict[str, Any]]
    subscriber: dict[str, Any]
    delivery: Delivery


@dataclass
class Manifests:
    brokers: dict[str, Delivery] = field(default_factory=dict)
    triggers: list[TriggerSpec] = field(default_factory=list)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> manifest
    pingsources: list[dict[str, Any]] = field(default_factory=list)
    documents: list[dict[str, Any]] = field(default_factory=list)

    def function_folder(self, service: str) -> str:
        """The `functions/<folder>` a Knative Service runs."""
        labels = self.services[service].get("metadata", {}).get("labels", {})
        return labels.get("dvci.gov.vn/function", service.replace("-", "_"))


def load(folder: str | Path) -> Manifests:
    """Every YAML document under `folder` (recursively), sorted by path for a stable order."""
    out = Manifests()
    for path in sorted(Path(folder).rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                out.documents.append(doc)
    for doc in out.documents:
        kind, meta, spec = doc.get("kind"), doc.get("metadata", {}), doc.get("spec", {}) or {}
        if kind == "Broker":
            out.brokers[meta["name"]] = Delivery.parse(spec.get("delivery"))
        elif kind == "Service" and doc.get("apiVersion", "").startswith("serving.knative.dev"):
            out.services[meta["name"]] = doc
        elif kind == "PingSource":
            out.pingsources.append(doc)
    for doc in out.documents:
        if doc.get("kind") != "Trigger":
            continue
        spec = doc["spec"]
        broker = spec.get("broker", "default")
        out.triggers.append(TriggerSpec(
            name=doc["metadata"]["name"], broker=broker,
            filter_attributes=dict((spec.get("filter") or {}).get("attributes") or {}),
            filters=list(spec.get("filters") or []), subscriber=spec["subscriber"],
            delivery=Delivery.parse(spec.get("delivery"), out.brokers.get(broker, Delivery())),
        ))
    return out
