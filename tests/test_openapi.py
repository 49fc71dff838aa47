"""docs/openapi.yaml is generated from the FunctionApps and checked in: it must match them, be valid OpenAPI
3.1, and cover every HTTP surface (each function's CloudEvent POST, its webhooks, health, metrics)."""

from __future__ import annotations

import yaml
from openapi_spec_validator import validate

from dvci import openapi
from dvci.schemas import function_apps


def test_checked_in_openapi_matches_the_functions():
    assert not openapi.stale(), "run `dvci openapi` and commit docs/openapi.yaml"


def test_openapi_is_valid_and_covers_every_surface():
    doc = yaml.safe_load(openapi.render())
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    for folder, app in function_apps().items():
        part = openapi.operations_for(doc, folder)
        paths = part["paths"]
        assert {"/", "/health/liveness", "/health/readiness", "/metrics"} <= set(paths), folder
        for method, path in app.routes:
            assert method.lower() in paths[path], (folder, path)
            assert {"401", "413"} <= set(paths[path][method.lower()]["responses"])
        post = paths["/"]["post"]
        assert {"202", "400", "409", "413", "429", "503"} <= set(post["responses"])
        assert set(post["requestBody"]["content"]) == {"application/cloudevents+json", "application/json"}
        types = next(p for p in post["parameters"] if p["name"] == "ce-type")["schema"].get("enum")
        if not app.takes_any:
            assert types == app.event_types
        cat = app.catalogue()
        if cat["replies"]:
            assert post["responses"]["200"]["content"]["application/json"]["schema"]["anyOf"]
    assert "/send_sms/dlr/vnpt" in doc["paths"] and "/send_email/ses/notifications" in doc["paths"]
    refs = yaml.safe_dump(doc).count("#/components/schemas/")
    assert refs and all(name in doc["components"]["schemas"] for name in ("Problem", "SmsSendRequested"))


def test_structured_mode_names_each_event_type_with_its_data_schema():
    doc = yaml.safe_load(openapi.render())
    post = openapi.operations_for(doc, "send_sms")["paths"]["/"]["post"]
    variants = post["requestBody"]["content"]["application/cloudevents+json"]["schema"]["anyOf"]
    by_type = {v["properties"]["type"]["enum"][0]: v["properties"]["data"]["$ref"] for v in variants}
    assert by_type["vn.gov.dvc.sms.send.requested"].endswith("/SmsSendRequested")
    assert by_type["vn.gov.dvc.sms.bulk.requested"].endswith("/SmsBulkRequested")
