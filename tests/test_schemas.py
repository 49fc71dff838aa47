"""schemas/ is generated from the models and checked in: it must match them."""

from __future__ import annotations

import json

import yaml

from dvci import schemas


def test_checked_in_schemas_match_the_models():
    assert schemas.stale() == [], "run `dvci schemas` and commit schemas/"


def test_every_event_has_a_schema_and_an_asyncapi_channel():
    files = schemas.render()
    doc = yaml.safe_load(files["asyncapi.yaml"])
    assert doc["asyncapi"].startswith("3.")
    for event_type in ("vn.gov.dvc.sms.send.requested", "vn.gov.dvc.sms.accepted", "vn.gov.dvc.sms.failed",
                       "vn.gov.dvc.sms.scheduled", "vn.gov.dvc.sms.bulk.requested", "vn.gov.dvc.sms.bulk.completed",
                       "vn.gov.dvc.sms.delivery.updated"):
        schema = json.loads(files[f"{event_type}.json"])
        assert schema["type"] == "object" and schema["properties"]
        assert event_type in doc["channels"]
    actions = {op["action"] for op in doc["operations"].values()}
    assert actions == {"receive", "send"}
    for op in doc["operations"].values():
        assert op["channel"]["$ref"].removeprefix("#/channels/") in doc["channels"]
