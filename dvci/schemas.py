"""schemas/: the JSON Schema of every event's data and an AsyncAPI 3 document, generated from the
functions' models (`dvci schemas` writes them; `dvci schemas --check` fails when they are stale)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import orjson
import yaml

ROOT = Path(__file__).resolve().parent.parent


def function_apps() -> dict[str, Any]:
    apps = {}
    for main in sorted((ROOT / "functions").glob("*/main.py")):
        spec = importlib.util.spec_from_file_location(f"dvci_schema_{main.parent.name}", main)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        apps[main.parent.name] = module.app
    return apps


def render() -> dict[str, bytes]:
    """File name (relative to schemas/) -> content."""
    files: dict[str, bytes] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for folder, app in function_apps().items():
        for role, entries in app.catalogue().items():
            for event_type, model in sorted(entries.items()):
                schema = model.model_json_schema()
                schema["$id"] = f"https://dvc.gov.vn/schemas/{event_type}.json"
                schema["title"] = f"{event_type} data ({model.__name__})"
                files[f"{event_type}.json"] = orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
                messages[model.__name__] = {"name": event_type, "title": model.__name__,
                                            "contentType": "application/json",
                                            "summary": (model.__doc__ or "").strip().split("\n")[0] or event_type,
                                            "payload": schema}
                channels[event_type] = {"address": event_type, "messages": {
                    model.__name__: {"$ref": f"#/components/messages/{model.__name__}"}}}
                action = "receive" if role == "takes" else "send"
                operations[f"{folder}.{action}.{event_type}"] = {
                    "action": action, "channel": {"$ref": f"#/channels/{event_type}"},
                    "summary": {"takes": "handled by", "replies": "reply of", "emits": "emitted to K_SINK by"}[role]
                               + f" {folder}"}
    doc = {"asyncapi": "3.0.0",
           "info": {"title": "DVC Integrations events", "version": "0.1.0",
                    "description": "CloudEvents 1.0 over a Knative broker; `type` is the channel, `data` the payload."},
           "defaultContentType": "application/json", "channels": dict(sorted(channels.items())),
           "operations": dict(sorted(operations.items())), "components": {"messages": dict(sorted(messages.items()))}}
    files["asyncapi.yaml"] = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).encode()
    return files


def write(folder: Path = ROOT / "schemas") -> list[str]:
    folder.mkdir(exist_ok=True)
    files = render()
    for name, content in files.items():
        (folder / name).write_bytes(content)
    for stale in folder.glob("*"):
        if stale.name not in files:
            stale.unlink()
    return sorted(files)


def stale(folder: Path = ROOT / "schemas") -> list[str]:
    """Files that differ from what the models generate (missing, changed or extra)."""
    files = render()
    out = [n for n, c in files.items() if not (folder / n).exists() or (folder / n).read_bytes() != c]
    out += [p.name for p in folder.glob("*") if p.name not in files]
    return sorted(out)
