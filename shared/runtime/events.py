"""CloudEvents 1.0 over HTTP: parse binary and structured mode, encode binary mode.

A small, strict codec: the official SDK is used by the tests to encode, but parsing here names the
missing or invalid attribute in the error, and costs one JSON decode per event.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

import orjson

from shared.runtime.errors import InvalidEvent
from shared.runtime.settings import LimitSettings, limit_settings

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
    #: what names an event derived from another (a bulk recipient): its idempotency record and provider
    #: references are digests of these parts instead of (source, id), so no request event can share them
    derived: tuple[str, ...] | None = None

    def key_parts(self) -> tuple[str, ...]:
        """The parts `event_digest` names this event by: (source, id), or the derived event's own parts."""
        return self.derived or (self.source, self.id)

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
    def from_dict(cls, obj: Mapping[str, Any], limits: LimitSettings | None = None, *,
                  lenient: bool = False) -> CloudEvent:
        """Build from a structured-mode JSON object, validating the required attributes and the bounds."""
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
        optional = {name: None if obj.get(name) is None else _ext_str(obj[name])
                    for name in ("datacontenttype", "subject", "time", "dataschema")}
        event = cls(
            id=_ext_str(obj["id"]), source=_ext_str(obj["source"]), type=_ext_str(obj["type"]),
            specversion=str(obj["specversion"]),
            datacontenttype=optional["datacontenttype"] or ("application/json" if data is not None else None),
            subject=optional["subject"], time=optional["time"], dataschema=optional["dataschema"],
            extensions=ext, data=data,
        )
        check_bounds(event, limits or limit_settings(), attributes=not lenient)
        return event


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


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def check_bounds(event: CloudEvent, limits: LimitSettings, *, attributes: bool = True) -> None:
    """Every attribute bounded (length, no control characters: they would reach headers and logs), `time`
    an RFC 3339 instant that converts to UTC, and JSON data no deeper than what can be written back.
    `attributes=False` (the dead-letter sink) checks the depth only."""
    if event.data is not None and not isinstance(event.data, bytes | bytearray) \
            and too_deep(event.data, limits.json_depth):
        raise InvalidEvent(f"event data nests deeper than {limits.json_depth} levels",
                           errors=[{"field": "data", "problem": f"JSON depth over {limits.json_depth}"}])
    if not attributes:
        return
    if len(event.extensions) > limits.extensions:
        raise InvalidEvent(f"{len(event.extensions)} extension attributes: at most {limits.extensions}",
                           errors=[{"field": "extensions", "problem": "too many"}])
    attrs = {"id": event.id, "source": event.source, "type": event.type, "subject": event.subject,
             "time": event.time, "dataschema": event.dataschema, "datacontenttype": event.datacontenttype,
             **event.extensions}
    for name, value in attrs.items():
        if value is None:
            continue
        if len(value) > limits.attribute_chars:
            raise InvalidEvent(f"attribute {name} has {len(value)} characters: at most {limits.attribute_chars}",
                               errors=[{"field": name, "problem": "too long"}])
        if _CONTROL.search(value):
            raise InvalidEvent(f"attribute {name} contains control characters",
                               errors=[{"field": name, "problem": "control characters"}])
    if event.time is not None:
        _check_time(event.time)


def _check_time(value: str) -> None:
    try:
        stamp = datetime.fromisoformat(value[:-1] + "+00:00" if value[-1:] in "Zz" else value)
        if stamp.tzinfo is None or "T" not in value.upper():
            raise ValueError("no offset")
        stamp.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidEvent("attribute time is not an RFC 3339 timestamp with an offset, in range",
                           errors=[{"field": "time", "problem": "invalid RFC 3339 timestamp"}]) from None


def too_deep(value: Any, limit: int) -> bool:
    """Whether JSON `value` nests more than `limit` containers deep (iterative: no recursion limit)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def _shallow(body: bytes, limit: int) -> bool:
    """Cheap pre-check: fewer opening brackets than the limit cannot nest deeper than it."""
    return body.count(b"[") + body.count(b"{") < limit


def is_json(content_type: str | None) -> bool:
    if not content_type:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json") or media == "text/json"


def parse_http(headers: Mapping[str, str], body: bytes, limits: LimitSettings | None = None, *,
               keep_deep: bool = False) -> CloudEvent:
    """Decode a CloudEvent from HTTP headers (lower-case keys) and body, binary or structured mode.

    Bounds (LimitSettings) are enforced: 400 for an oversized or control-character attribute, an invalid
    `time`, or data nested deeper than `json_depth`. With `keep_deep` (the dead-letter sink, which must keep
    what others refused) attributes are taken as they are (the body limit still applies) and too-deep JSON
    is kept as raw bytes: the binary body, or the whole structured body (datacontenttype
    application/cloudevents+json); so is binary data that is not the JSON its content type says."""
    limits = limits or limit_settings()
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
        if keep_deep and not _shallow(body, limits.json_depth) and too_deep(obj.get("data"), limits.json_depth):
            obj = {**{k: v for k, v in obj.items() if k not in ("data", "data_base64")},
                   "datacontenttype": STRUCTURED, "data_base64": base64.b64encode(body).decode()}
        return CloudEvent.from_dict(obj, limits, lenient=keep_deep)
    if "ce-specversion" not in headers:
        raise InvalidEvent(
            "not a CloudEvent: no ce-specversion header (binary mode) and content-type is not "
            f"{STRUCTURED} (structured mode)",
            errors=[{"field": "ce-specversion", "problem": "required"}],
        )
    attrs = {k[3:]: _unquote(k, v) for k, v in headers.items() if k.startswith("ce-")}
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
                if not keep_deep:
                    raise InvalidEvent(f"event data is not valid JSON: {exc}",
                                       errors=[{"field": "data", "problem": "invalid JSON"}]) from exc
                data = body  # brokers forward binary data as opaque bytes: the sink keeps what others refused
            if keep_deep and not isinstance(data, bytes) and not _shallow(body, limits.json_depth) \
                    and too_deep(data, limits.json_depth):
                data = body
        else:
            data = body
    ext = {k: v for k, v in attrs.items() if k not in CORE}
    for name in ext:
        _check_extension_name(name)
    event = CloudEvent(
        id=attrs["id"], source=attrs["source"], type=attrs["type"], specversion=attrs["specversion"],
        datacontenttype=content_type or None, subject=attrs.get("subject"), time=attrs.get("time"),
        dataschema=attrs.get("dataschema"), extensions=ext, data=data,
    )
    check_bounds(event, limits, attributes=not keep_deep)
    return event


def _unquote(header: str, value: str) -> str:
    """Binary-mode header values are percent-encoded UTF-8 (CloudEvents HTTP binding 3.1.3.2)."""
    if "%" not in value:
        return value
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError:
        raise InvalidEvent(f"{header} is not percent-encoded UTF-8",
                           errors=[{"field": header, "problem": "invalid percent-encoding"}]) from None


#: printable ASCII except space, '"' and '%' stays as is in a header value; the rest is percent-encoded
_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"%')


def binary_headers(event: CloudEvent) -> dict[str, str]:
    """HTTP headers of `event` in binary mode (explicit content-type)."""
    headers = {"ce-specversion": event.specversion, "ce-id": event.id, "ce-source": event.source,
               "ce-type": event.type,
               "content-type": event.datacontenttype or "application/json"}
    for name in ("subject", "time", "dataschema"):
        value = getattr(event, name)
        if value is not None:
            headers["ce-" + name] = quote(value, safe=_HEADER_SAFE)
    for k, v in event.extensions.items():
        headers["ce-" + k] = quote(v, safe=_HEADER_SAFE)
    for name in ("ce-id", "ce-source", "ce-type"):
        headers[name] = quote(headers[name], safe=_HEADER_SAFE)
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
