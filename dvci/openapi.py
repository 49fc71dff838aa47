"""docs/openapi.yaml: an OpenAPI 3.1 document of every function's HTTP surface, generated from the FunctionApps
(`dvci openapi` writes it; `dvci openapi --check` fails when it is stale).

Each function is its own Knative Service (its own host); in this one document its paths carry the function
as a prefix (`/send_sms/`, `/send_sms/dlr/vnpt`) and every path item names it in `x-dvci-function` and
`x-dvci-path` (the path the function serves). `operations_for(doc, folder)` gives one function's paths
without the prefix (what the schemathesis runner in fuzz/ tests against a real process).

Per function: the CloudEvent `POST /` (structured mode `application/cloudevents+json`, binary mode with
`ce-*` headers and the data as `application/json`; the data schemas from the pydantic models), its replies
(200 + a binary-mode outcome event, 202, problem+json 400/409/413/429/503), its plain routes (webhooks:
401/413 before anything is parsed), health and metrics.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from dvci.schemas import ROOT, function_apps
from shared.runtime.settings import LimitSettings

DOC = ROOT / "docs" / "openapi.yaml"
REF = "#/components/schemas/{model}"
_LIMITS = LimitSettings.model_construct()  # the defaults (the document describes the shipped bounds)
_ATTR = {"type": "string", "minLength": 1, "maxLength": _LIMITS.attribute_chars,
         "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]*$"}
_EXT_NAME = "^[a-z0-9]{1,20}$"
_CE_HEADERS = [  # binary mode: required there, absent in structured mode (so not `required` here)
    ("ce-specversion", "CloudEvents spec version (binary mode): 1.0", {"type": "string", "enum": ["1.0"]}),
    ("ce-id", "Event id (binary mode); with ce-source the idempotency key", _ATTR),
    ("ce-source", "Event source (binary mode)", _ATTR),
    ("ce-type", "Event type (binary mode)", None),
    ("ce-time", "RFC 3339 time with an offset (binary mode)", {"type": "string", "format": "date-time"}),
    ("ce-subject", "Subject (binary mode)", _ATTR),
    ("ce-dossierid", "Extension: the dossier (carried into the reply; percent-encoded UTF-8)", _ATTR),
    ("ce-traceparent", "Extension: W3C trace context (carried into the reply)", _ATTR),
    ("ce-partitionkey", "Extension: broker partition key (carried into the reply)", _ATTR),
]
_STATUS = {
    "400": "Can never succeed: malformed CloudEvent, invalid data, an attribute over its bound, reused id "
           "with other data (the broker dead-letters it)",
    "409": "The same event is being handled elsewhere (the broker retries after Retry-After)",
    "413": "Body over the limit (DVCI_LIMIT_EVENT_BODY_BYTES / DVCI_LIMIT_ROUTE_BODY_BYTES)",
    "429": "Rate limited (the broker retries after Retry-After)",
    "503": "No provider or state store available now (the broker retries after Retry-After)",
}


def _problem_components() -> dict[str, Any]:
    return {
        "Problem": {
            "type": "object", "description": "RFC 9457 problem details",
            "required": ["type", "title", "status", "detail"],
            "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                           "detail": {"type": "string"},
                           "errors": {"type": "array", "items": {"type": "object", "properties": {
                               "field": {"type": "string"}, "problem": {"type": "string"}}}}},
        },
        "CloudEventAny": {
            "type": "object", "description": "A structured-mode CloudEvent of any type (the dead-letter sink)",
            "required": ["specversion", "id", "source", "type"],
            "properties": {"specversion": {"type": "string", "enum": ["1.0"]}, "id": _ATTR, "source": _ATTR,
                           "type": _ATTR, "data": {}},
        },
    }


def _problem(description: str, retry: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description,
                           "content": {"application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}}}
    if retry:
        out["headers"] = {"retry-after": {"description": "seconds", "schema": {"type": "string"}}}
    return out


def _structured(event_type: str | None, data_ref: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = {
        "specversion": {"type": "string", "enum": ["1.0"]}, "id": _ATTR, "source": _ATTR,
        "type": {"type": "string", "enum": [event_type]} if event_type else _ATTR,
        "datacontenttype": {"type": "string", "enum": ["application/json"]},
        "subject": _ATTR, "time": {"type": "string", "format": "date-time"}, "data": data_ref,
    }
    return {"type": "object", "required": ["specversion", "id", "source", "type", "data"], "properties": props,
            "maxProperties": len(props) + _LIMITS.extensions,
            "propertyNames": {"anyOf": [{"enum": list(props)}, {"pattern": _EXT_NAME}]},
            "additionalProperties": {"type": "string", "maxLength": _LIMITS.attribute_chars}}


def _model_schemas(models: list[tuple[type[BaseModel], str]]) -> tuple[dict[Any, Any], dict[str, Any]]:
    unique = list(dict.fromkeys(models))
    mapping, defs = models_json_schema(unique, ref_template=REF)  # type: ignore[arg-type]
    return mapping, defs.get("$defs", {})


def _event_operation(folder: str, app: Any, refs: dict[tuple[type[BaseModel], str], Any]) -> dict[str, Any]:
    cat = app.catalogue()
    takes = sorted(cat["takes"].items())
    replies = sorted(cat["replies"].items())
    structured = [_structured(t, refs[(m, "validation")]) for t, m in takes]
    binary = [refs[(m, "validation")] for _, m in takes]
    if app.takes_any:
        structured.append({"$ref": REF.format(model="CloudEventAny")})
        binary.append({})
    params = []
    for name, description, schema in _CE_HEADERS:
        if schema is None:
            schema = {"type": "string", "enum": [t for t, _ in takes]} if not app.takes_any else _ATTR
        params.append({"name": name, "in": "header", "required": False, "description": description,
                       "schema": schema})
    ok_headers = {h: {"description": f"{h} of the outcome event (binary mode)", "schema": {"type": "string"}}
                  for h in ("ce-specversion", "ce-id", "ce-source", "ce-type")}
    responses: dict[str, Any] = {}
    if replies:
        responses["200"] = {
            "description": "Done: the outcome event in binary mode (ce-type: "
                           + ", ".join(t for t, _ in replies) + ")",
            "headers": ok_headers,
            "content": {"application/json": {"schema": {"anyOf": [refs[(m, "serialization")] for _, m in replies]}}},
        }
    responses["202"] = {"description": "Done, nothing to reply (jobs, sinks)"}
    for code, description in _STATUS.items():
        responses[code] = _problem(description, retry=code in ("409", "429", "503"))
    summary = "Take a CloudEvent: " + (", ".join(t for t, _ in takes) or "-")
    if app.takes_any:
        summary += " and any other type (dead letters)"
    return {"post": {
        "operationId": f"{folder}.event", "tags": [folder], "summary": summary,
        "description": "CloudEvents 1.0 over HTTP, binary mode (ce-* headers, data as the body) or structured "
                       "mode (application/cloudevents+json); one event per request (batch mode refused).",
        "parameters": params,
        "requestBody": {"required": True, "content": {
            "application/cloudevents+json": {"schema": {"anyOf": structured}},
            "application/json": {"schema": {"anyOf": binary}},
        }},
        "responses": responses,
    }}


def _webhook_auth(path: str) -> tuple[str, str] | None:
    """(scheme, header) of the provider webhook served at `path`, from the provider registries."""
    from shared.integrations.registry import all_specs

    for spec in all_specs():
        if spec.webhook is not None and spec.webhook.path == path:
            return spec.webhook.scheme, spec.webhook.header
    return None


def _route_operation(folder: str, method: str, path: str) -> dict[str, Any]:
    auth = _webhook_auth(path)
    params = []
    if path == "/ses/notifications":
        how = "Amazon SNS message signature (SigningCertURL, Signature in the body), topic allow-list, freshness"
    elif auth is not None:
        how = f"{auth[0]} in the {auth[1]} header, or a source IP on the provider's allow-list"
        params.append({"name": auth[1], "in": "header", "required": False, "schema": {"type": "string"},
                       "description": "webhook authentication (" + auth[0] + ")"})
    else:
        how = "x-dvci-signature (hmac-sha256: t=<unix>,v1=<hex>) or a source IP on the provider's allow-list"
        params.append({"name": "x-dvci-signature", "in": "header", "required": False,
                       "schema": {"type": "string"}, "description": "webhook authentication (hmac-sha256)"})
    return {method.lower(): {
        "operationId": f"{folder}.{method.lower()}{path.replace('/', '.')}", "tags": [folder],
        "summary": f"Provider webhook {path}",
        "description": f"Authenticated by {how}; refused with 401 (403 for a topic not allowed) before the payload "
                       "is parsed; a body over the route's limit is 413 before it is read.",
        "parameters": params,
        "requestBody": {"required": True, "content": {"application/json": {"schema": {}}}},
        "responses": {
            "200": {"description": "Taken (what was done with it)",
                    "content": {"application/json": {"schema": {"type": "object"}}}},
            "400": _problem("Authentic but malformed payload"),
            "401": _problem("Not authentic"),
            "403": _problem("Authentic but not allowed (SNS topic)"),
            "409": {"description": "The same callback is being completed elsewhere (retry)"},
            "413": _problem(_STATUS["413"]),
            "503": _problem("Could not complete now (retry)", retry=True),
        },
    }}


def _health(folder: str) -> dict[str, Any]:
    plain = {"type": "object", "properties": {"status": {"type": "string"}, "reason": {"type": "string"}}}
    return {
        "/health/liveness": {"get": {"operationId": f"{folder}.liveness", "tags": [folder], "summary": "Liveness",
                                     "responses": {"200": {"description": "alive", "content": {
                                         "application/json": {"schema": plain}}}}}},
        "/health/readiness": {"get": {"operationId": f"{folder}.readiness", "tags": [folder],
                                      "summary": "Readiness (its state store answers)",
                                      "responses": {"200": {"description": "ready", "content": {
                                          "application/json": {"schema": plain}}},
                                                    "503": {"description": "not ready", "content": {
                                                        "application/json": {"schema": plain}}}}}},
        "/metrics": {"get": {"operationId": f"{folder}.metrics", "tags": [folder],
                             "summary": "Prometheus metrics (text exposition format)",
                             "responses": {"200": {"description": "metrics", "content": {
                                 "text/plain": {"schema": {"type": "string"}}}}}}},
    }


def build() -> dict[str, Any]:
    apps = function_apps()
    models: list[tuple[type[BaseModel], str]] = []
    for app in apps.values():
        cat = app.catalogue()
        models += [(m, "validation") for m in cat["takes"].values()]
        models += [(m, "serialization") for m in cat["replies"].values()]
    mapping, defs = _model_schemas(models)
    paths: dict[str, Any] = {}
    for folder, app in apps.items():
        items: dict[str, Any] = {"/": _event_operation(folder, app, mapping)}
        for method, path in app.routes:
            items.setdefault(path, {}).update(_route_operation(folder, method, path))
        items.update(_health(folder))
        for path, item in items.items():
            paths[f"/{folder}{path}"] = {"x-dvci-function": folder, "x-dvci-path": path, **item}
    return {
        "openapi": "3.1.0",
        "info": {"title": "DVC Integrations functions", "version": "0.1.0",
                 "description": "The HTTP surface of every function (each its own Knative Service: the path "
                                "prefix names the function, `x-dvci-path` is the path it serves). Generated by "
                                "`dvci openapi` from the FunctionApps; event data schemas as in schemas/."},
        "servers": [{"url": "http://{function}.dvci.svc.cluster.local", "description": "per function; strip "
                     "the /<function> prefix", "variables": {"function": {"default": "send-sms"}}}],
        "tags": [{"name": folder, "description": (app.__class__.__name__ + " " + app.name)} for folder, app in
                 apps.items()],
        "paths": paths,
        "components": {"schemas": {**_problem_components(), **dict(sorted(defs.items()))}},
    }


def render() -> bytes:
    return yaml.safe_dump(build(), sort_keys=False, allow_unicode=True, width=120).encode()


def write(path: Path = DOC) -> Path:
    path.write_bytes(render())
    return path


def stale(path: Path = DOC) -> bool:
    return not path.exists() or path.read_bytes() != render()


def operations_for(doc: dict[str, Any], folder: str) -> dict[str, Any]:
    """One function's document: its paths without the /<folder> prefix (servers: that function's process)."""
    out = copy.deepcopy(doc)
    out["paths"] = {item["x-dvci-path"]: {k: v for k, v in item.items() if not k.startswith("x-")}
                    for item in doc["paths"].values() if item.get("x-dvci-function") == folder}
    out["servers"] = [{"url": "/"}]
    return out
