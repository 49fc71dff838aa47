"""CloudEvents 1.0 over HTTP: parse binary and structured mode, encode binary mode.

A small, strict codec: the official SDK is used by the tests to encode, but parsing here names the
missing or invalid attribute in the error, and costs one JSON decode per event.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from shared.runtime.errors import InvalidEvent

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
REQUIRED = ("id", "source", "specversion", "type")
CORE = frozenset(
    ("id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject", "time")
)
#: Extensions carried from a request into its reply.
CARRIED = ("dossierid", "traceparent", "tracestate", "partitionkey")


@dataclass(slots=True)
class CloudEvent:
    """One CloudEvent: context attributes, extensions and data (decoded when JSON)."""

    id: str
    source: str
    type: str
    specversion: str = "1.0"
    datacontenttype: str | None = "application/json"
    subject: str | None = None
    time: str | None = None
    dataschema: str | None = None
    extensions: dict[str, str] = field(default_factory=dict)
    data: Any = None

    def data_bytes(self) -> bytes:
        """The data as bytes on the wire (JSON-encoded unless already bytes)."""
        if self.data is None:
            return b""
        if isinstance(self.data, bytes | bytearray):
            return bytes(self.data)
        return orjson.dumps(self.data)

    def fingerprint(self) -> str:
        """A digest of what makes two deliveries 'the same request' (type + canonical data)."""
        if isinstance(self.data, bytes | bytearray):
            payload = bytes(self.data)
        else:
            payload = orjson.dumps(self.data, option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(self.type.encode() + b"\n" + payload).hexdigest()[:32]

    def to_dict(self) -> dict[str, Any]:
        """Structured-mode JSON form (data inline when JSON, else data_base64)."""
        out: dict[str, Any] = {"specversion": self.specversion, "id": self.id, "source": self.source,
                               "type": self.type}
        for name in ("datacontenttype", "subject", "time", "dataschema"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out.update(self.extensions)
        if isinstance(self.data, bytes | bytearray):
            out["data_base64"] = base64.b64encode(self.data).decode()
        elif self.data is not None:
            out["data"] = self.data
        return out

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> CloudEvent:
        """Build from a structured-mode JSON object, validating the required attributes."""
        missing = [name for name in REQUIRED if not obj.get(name)]
        if missing:
            raise InvalidEvent(
                f"missing required CloudEvents attribute(s): {', '.join(missing)}",
                errors=[{"field": name, "problem": "required"} for name in missing],
            )
        _check_specversion(str(obj["specversion"]))
        data: Any = obj.get("data")
        if "data_base64" in obj:
            try:
                data = base64.b64decode(obj["data_base64"], validate=True)
            except (ValueError, TypeError) as exc:
                raise InvalidEvent("data_base64 is not valid base64",
                                   errors=[{"field": "data_base64", "problem": "invalid base64"}]) from exc
        ext = {k: _ext_str(v) for k, v in obj.items() if k not in CORE and k not in ("data", "data_base64")}
        for name in ext:
            _check_extension_name(name)
        return cls(
            id=str(obj["id"]), source=str(obj["source"]), type=str(obj["type"]),
            specversion=str(obj["specversion"]),
            datacontenttype=obj.get("datacontenttype", "application/json" if data is not None else None),
            subject=obj.get("subject"), time=obj.get("time"), dataschema=obj.get("dataschema"),
            extensions=ext, data=data,
        )


def _ext_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check_specversion(version: str) -> None:
    if version != "1.0":
        raise InvalidEvent(f"unsupported specversion {version!r}: only 1.0 is accepted",
                           errors=[{"field": "specversion", "problem": "unsupported"}])


def _check_extension_name(name: str) -> None:
    if not (name.isascii() and name.isalnum() and name == name.lower()) or len(name) > 20:
        raise InvalidEvent(f"invalid CloudEvents extension name {name!r} (lower-case a-z0-9, at most 20)",
                           errors=[{"field": name, "problem": "invalid attribute name"}])


def is_json(content_type: str | None) -> bool:
    if not content_type:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json") or media == "text/json"


def parse_http(headers: Mapping[str, str], body: bytes) -> CloudEvent:
    """Decode a CloudEvent from HTTP headers (lower-case keys) and body, binary or structured mode."""
    content_type = headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media == BATCH:
        raise InvalidEvent("batched CloudEvents are not accepted: send one event per request",
                           errors=[{"field": "content-type", "problem": "batch mode unsupported"}])
    if media == STRUCTURED:
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidEvent(f"structured CloudEvent body is not valid JSON: {exc}",
                               errors=[{"field": "body", "problem": "invalid JSON"}]) from exc
        if not isinstance(obj, dict):
            raise InvalidEvent("structured CloudEvent body must be a JSON object",
                               errors=[{"field": "body", "problem": "not an object"}])
        return CloudEvent.from_dict(obj)
    if "ce-specversion" not in headers:
        raise InvalidEvent(
            "not a CloudEvent: no ce-specversion header (binary mode) and content-type is not "
            f"{STRUCTURED} (structured mode)",
            errors=[{"field": "ce-specversion", "problem": "required"}],
        )
    attrs = {k[3:]: v for k, v in headers.items() if k.startswith("ce-")}
    missing = [name for name in REQUIRED if not attrs.get(name)]
    if missing:
        raise InvalidEvent(
            f"missing required CloudEvents attribute(s): {', '.join('ce-' + m for m in missing)}",
            errors=[{"field": "ce-" + name, "problem": "required"} for name in missing],
        )
    _check_specversion(attrs["specversion"])
    data: Any = None
    if body:
        if is_json(content_type):
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise InvalidEvent(f"event data is not valid JSON: {exc}",
                                   errors=[{"field": "data", "problem": "invalid JSON"}]) from exc
        else:
            data = body
    ext = {k: v for k, v in attrs.items() if k not in CORE}
    return CloudEvent(
        id=attrs["id"], source=attrs["source"], type=attrs["type"], specversion=attrs["specversion"],
        datacontenttype=content_type or None, subject=attrs.get("subject"), time=attrs.get("time"),
        dataschema=attrs.get("dataschema"), extensions=ext, data=data,
    )


def binary_headers(event: CloudEvent) -> dict[str, str]:
    """HTTP headers of `event` in binary mode (explicit content-type)."""
    headers = {"ce-specversion": event.specversion, "ce-id": event.id, "ce-source": event.source,
               "ce-type": event.type,
               "content-type": event.datacontenttype or "application/json"}
    for name in ("subject", "time", "dataschema"):
        value = getattr(event, name)
        if value is not None:
            headers["ce-" + name] = value
    for k, v in event.extensions.items():
        headers["ce-" + k] = v
    return headers


def derive_id(source: str, event_id: str, reply_type: str) -> str:
    """A reply id fixed by the request: the same request always yields the same reply id (a UUID v5 form)."""
    h = hashlib.sha256(f"{source}\x00{event_id}\x00{reply_type}".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}
_last_time: tuple[int, str] = (0, "")


def now_rfc3339() -> str:
    """UTC now with milliseconds (formatted once per millisecond)."""
    global _last_time
    ms = int(time.time() * 1000)
    if _last_time[0] != ms:
        stamp = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        _last_time = (ms, stamp)
    return _last_time[1]
