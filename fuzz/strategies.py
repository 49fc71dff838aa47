"""Hypothesis strategies shared by tests/test_fuzz.py and `python -m fuzz`: event data from the models' JSON
schemas (valid-ish: known-good values for well-known fields, then mutated), CloudEvents in binary and
structured mode with random attributes, extensions, depths, sizes and encodings, and webhook requests."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson
from hypothesis import strategies as st

#: values that get past the models' own checks, so the fuzzer also reaches the services and providers
KNOWN: dict[str, list[Any]] = {
    "to": ["0912345678", "0987654321", "+84912345678", "0398765432", "0812345678", "0701234567", "0991234567",
           ["citizen@example.vn"], ["a@example.vn", "b@example.vn"], "bounced@example.vn"],
    "phone": ["0912345678", "0243123456", "+84 912 345 678"],
    "email": ["citizen@example.vn", "bounced@example.vn,", "\"x\"bounced@example.vn", "(c)a@example.vn"],
    "text": ["Ho so da duoc tiep nhan", "Hồ sơ H29.1 đã có kết quả", "x" * 800, "\x00\x01\x1b", "\r\n", "[QC] test"],
    "template": ["dossier_received", "result_ready", "payment_requested", "nope"],
    "template_id": ["dossier_received", "otp", "x"],
    "category": ["transactional", "otp", "advertising"],
    "locale": ["vi", "en"],
    "dossier_id": ["H29.1-240101-0001", "Hồ sơ H29.1", "a\r\nb", "0" * 300],
    "citizen_id": ["001099012345", "079203000123", "12345"],
    "s3_key": ["docs/a.pdf", "missing.pdf", "../etc/passwd", "a" * 1100],
    "subject": ["Thông báo", "a\r\nBcc: x@example.vn", "x" * 1000],
    "filename": ["a.pdf", "a\r\n.pdf", "ố.pdf"],
    "content_type": ["application/pdf", "", "multipart/mixed", "message/rfc822", "application/xml"],
    "time": ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59+14:00", "not-a-time", "2026-11-28T10:00:00+07:00"],
    "job": ["sms-advertising-drain", "sms-pull-receipts", "postal-poll", "lgsp-drain", "sign-poll", "audit-seal",
            "nope", "A"],
    "payment_url": ["javascript:alert(1)", "https://dvc.example.vn/pay"],
    "brandname": ["DVCQG", "UBND", "x" * 20],
}
_PRINTABLE = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
_ANY_TEXT = st.one_of(
    _PRINTABLE,
    st.text(max_size=12).map(lambda s: s + "\r\n" + s),
    st.sampled_from(["", " ", "\x00", "ố", "0912３45678", "٠٩١٢٣٤٥٦٧٨", "%", "%ff", "%zz", "\u202e", "\ufeff"]),
    st.integers(1, 5000).map(lambda n: "x" * n),
)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                         st.floats(allow_nan=False, allow_infinity=False), _ANY_TEXT)
json_values = st.recursive(json_scalars, lambda c: st.one_of(st.lists(c, max_size=4),
                                                              st.dictionaries(_PRINTABLE, c, max_size=4)),
                           max_leaves=12)


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = {**root.get("$defs", {}).get(name, {}), **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _string(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    lo, hi = schema.get("minLength", 0), min(schema.get("maxLength", 60), 300)
    fmt = schema.get("format")
    if fmt == "date-time":
        return st.datetimes(timezones=st.timezones() | st.none()).map(lambda d: d.isoformat())
    if fmt == "date":
        return st.dates().map(lambda d: d.isoformat())
    if "pattern" in schema:
        try:
            return st.from_regex(re.compile(schema["pattern"]), fullmatch=True).filter(lambda s: lo <= len(s) <= hi)
        except Exception:  # a pattern hypothesis cannot generate from: any text
            pass
    return st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=lo, max_size=max(lo, hi))


def from_schema(schema: dict[str, Any], root: dict[str, Any] | None = None, name: str = "",
                depth: int = 0) -> st.SearchStrategy[Any]:
    """A strategy of values valid for (a practical subset of) the JSON Schema pydantic writes, with the
    known-good values of KNOWN mixed in by property name."""
    root = root if root is not None else schema
    schema = _resolve(schema, root)
    kind = schema.get("type")
    want = {"string": str, "array": list, "object": dict, "integer": int, "boolean": bool}.get(
        kind if isinstance(kind, str) else "", object)
    fits = [v for v in KNOWN.get(name, []) if isinstance(v, want)]
    known = [st.sampled_from(fits)] if fits and "enum" not in schema and "const" not in schema else []
    if depth > 6:
        return st.one_of(*known, json_scalars)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of(*known, *(from_schema(s, root, name, depth + 1) for s in schema[key]))
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return from_schema(schema["allOf"][0], root, name, depth + 1)
    if isinstance(kind, list):
        return st.one_of(*(from_schema({**schema, "type": k}, root, name, depth + 1) for k in kind))
    if kind == "string":
        return st.one_of(*known, _string(schema)) if known else _string(schema)
    if kind == "integer":
        lo = schema.get("minimum", schema.get("exclusiveMinimum", -(2**40) - 1) + 1)
        hi = schema.get("maximum", schema.get("exclusiveMaximum", 2**40 + 1) - 1)
        return st.integers(lo, hi)
    if kind == "number":
        return st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        if "prefixItems" in schema:
            return st.tuples(*(from_schema(s, root, name, depth + 1) for s in schema["prefixItems"])).map(list)
        items = from_schema(schema.get("items", {}), root, name, depth + 1)
        return st.one_of(*known, st.lists(items, min_size=schema.get("minItems", 0),
                                          max_size=min(schema.get("maxItems", 4), 4)))
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        fixed = {k: from_schema(v, root, k, depth + 1) for k, v in props.items() if k in required}
        optional = {k: from_schema(v, root, k, depth + 1) for k, v in props.items() if k not in required}
        extra = schema.get("additionalProperties")
        base = st.fixed_dictionaries(fixed, optional=optional)
        if isinstance(extra, dict) and extra and not props:
            return st.dictionaries(_PRINTABLE, from_schema(extra, root, name, depth + 1), max_size=4)
        return base
    return st.one_of(*known, json_values)


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[Any]) -> Any:
    """A valid value, or one with a key dropped, a key added, a value replaced, deep nesting or a big string."""
    value = draw(valid)
    how = draw(st.sampled_from(["none", "none", "none", "drop", "add", "replace", "nest", "big", "whole"]))
    if how == "whole":
        return draw(json_values)
    if how == "nest":
        depth = draw(st.sampled_from([30, 63, 64, 65, 200, 253, 254, 255, 600, 1023, 1100]))
        wrapped: Any = value
        for _ in range(depth):
            wrapped = [wrapped] if draw(st.booleans()) else {"a": wrapped}
        return wrapped if draw(st.booleans()) else ({**value, "x": wrapped} if isinstance(value, dict) else wrapped)
    if not isinstance(value, dict) or not value:
        return value
    key = draw(st.sampled_from(sorted(value)))
    if how == "drop":
        return {k: v for k, v in value.items() if k != key}
    if how == "add":
        return {**value, draw(_PRINTABLE): draw(json_values)}
    if how == "replace":
        return {**value, key: draw(json_values)}
    if how == "big":
        return {**value, key: "ố" * draw(st.sampled_from([1000, 70_000, 400_000]))}
    return value


@dataclass
class Request:
    """One HTTP request to a function: what was sent, and the CloudEvent's (source, id) when it has them."""

    headers: list[tuple[bytes, bytes]]
    body: bytes
    mode: str
    event_type: str | None = None
    source: str | None = None
    event_id: str | None = None
    extensions: dict[str, str] = field(default_factory=dict)
    #: the receiver decodes exactly these attributes (percent-encoded headers, string JSON members)
    exact: bool = True

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.decode("latin-1").lower() == name:
                return v.decode("latin-1")
        return None


_EXT_NAMES = st.one_of(st.sampled_from(["dossierid", "traceparent", "partitionkey", "tracestate", "x1"]),
                       st.from_regex(r"[a-z0-9]{1,20}", fullmatch=True),
                       st.sampled_from(["Ext_Name", "a-b", "x" * 21, "é", "ÉXT"])).filter(
    lambda n: n not in ("id", "source", "type", "specversion", "time", "subject", "dataschema", "datacontenttype",
                        "data", "data_base64"))
_ATTR_TEXT = st.one_of(st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=30),
                       _ANY_TEXT, st.sampled_from(["/dvc/core", "//", "a" * 1024, "a" * 1025]))
_TIMES = st.one_of(st.sampled_from(KNOWN["time"] + ["2026-02-30T00:00:00Z", "2026-11-28", "", "t"]),
                   st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()))


def _header_value(value: str, raw: bool) -> bytes:
    """Percent-encoded UTF-8 (the binding), or raw bytes as a careless sender would put them."""
    return value.encode("utf-8", "surrogatepass") if raw else quote(value, safe="").encode()


@st.composite
def cloudevents(draw: st.DrawFn, types: dict[str, st.SearchStrategy[Any]]) -> Request:
    """A CloudEvent request for a function whose event types (-> data strategies) are `types`."""
    known = sorted(types)
    clean = draw(st.integers(0, 9)) < 5  # half the events are valid CloudEvents with valid-ish data
    if clean:
        event_type = draw(st.sampled_from(known)) if known else draw(_ATTR_TEXT)
        data = draw(types.get(event_type, json_values))
        event_id, source = str(draw(st.uuids())), draw(st.sampled_from(["/dvc/core", "/dvc/core/hcm"]))
        extensions = draw(st.dictionaries(st.sampled_from(["dossierid", "partitionkey", "x1"]),
                                          st.sampled_from([*KNOWN["dossier_id"][:2], "p1"]), max_size=2))
        optional = draw(st.fixed_dictionaries({}, optional={"time": st.sampled_from(KNOWN["time"][3:])}))
        mode = draw(st.sampled_from(["binary", "structured"]))
        drop, specversion = None, "1.0"
    else:
        event_type = draw(st.one_of(st.sampled_from(known), _ATTR_TEXT)) if known else draw(_ATTR_TEXT)
        data = draw(mutated(types.get(event_type, json_values)))
        event_id = draw(st.one_of(st.uuids().map(str), _ATTR_TEXT))
        source = draw(st.one_of(st.just("/dvc/core"), _ATTR_TEXT))
        extensions = draw(st.dictionaries(_EXT_NAMES, _ATTR_TEXT, max_size=draw(st.sampled_from([2, 2, 40]))))
        optional = draw(st.fixed_dictionaries({}, optional={"time": _TIMES, "subject": _ATTR_TEXT,
                                                           "dataschema": _ATTR_TEXT}))
        mode = draw(st.sampled_from(["binary", "structured", "structured-base64", "garbage"]))
        drop = draw(st.sampled_from([None, None, None, None, "id", "source", "type", "specversion"]))
        specversion = draw(st.sampled_from(["1.0"] * 8 + ["0.3", "1.1", ""]))
    attrs = {"specversion": specversion, "id": event_id, "source": source, "type": event_type, **optional}
    if drop:
        attrs.pop(drop)
    if mode == "garbage":
        body = draw(st.one_of(st.binary(max_size=200), st.sampled_from([b"", b"{", b"[]", b"null", b'"x"',
                                                                         b"\xff\xfe{}", b"[" * 2000])))
        ctype = draw(st.sampled_from(["application/cloudevents+json", "application/cloudevents-batch+json",
                                      "application/json", "text/plain", ""]))
        headers = [(b"content-type", ctype.encode())] if ctype else []
        if draw(st.booleans()):
            headers += [(b"ce-" + k.encode(), _header_value(str(v), False)) for k, v in attrs.items()]
        return Request(headers, body, mode, event_type, source, event_id, exact=False)
    if mode == "binary":
        raw = not clean and draw(st.sampled_from([False, False, False, True]))
        headers = [(b"ce-" + k.encode(), _header_value(str(v), raw)) for k, v in attrs.items()]
        headers += [(b"ce-" + k.encode(), _header_value(v, raw)) for k, v in extensions.items() if k.isascii()]
        duplicate = not clean and draw(st.integers(0, 9)) == 0
        if duplicate:  # a duplicated attribute header
            headers.append((b"ce-id", b"other"))
        ctype = "application/json" if clean else draw(st.sampled_from([
            "application/json", "application/json; charset=utf-8", "text/json", "application/octet-stream", "",
            "application/vnd.x+json"]))
        if ctype:
            headers.append((b"content-type", ctype.encode()))
        body = _encode(data, "json" if clean else draw(st.sampled_from(["json", "json", "json", "latin1", "bytes"])))
        return Request(headers, body, mode, event_type, source, event_id, extensions,
                       exact=not raw and not duplicate and drop is None and specversion == "1.0")
    obj: dict[str, Any] = {**attrs, **extensions}
    bad_base64 = False
    if mode == "structured-base64":
        bad_base64 = draw(st.integers(0, 3)) == 0
        obj["data_base64"] = draw(st.sampled_from(["!!", "=", "YQ"])) if bad_base64 else \
            base64.b64encode(_encode(data, "json")).decode()
    else:
        obj["data"] = data
    odd = not clean and draw(st.integers(0, 9)) == 0
    if odd:  # a non-string attribute value
        obj[draw(st.sampled_from(["id", "source", "time", "dossierid"]))] = draw(json_values)
    try:
        body = orjson.dumps(obj)
    except (orjson.JSONEncodeError, TypeError):  # deeper than orjson writes: by hand
        body = _deep_dump(obj)
    ctype = draw(st.sampled_from(["application/cloudevents+json", "application/cloudevents+json; charset=utf-8"]))
    return Request([(b"content-type", ctype.encode())], body, mode, event_type, source, event_id, extensions,
                   exact=not odd and drop is None and specversion == "1.0" and not bad_base64)


def _encode(data: Any, how: str) -> bytes:
    try:
        text = orjson.dumps(data)
    except (orjson.JSONEncodeError, TypeError):
        text = _deep_dump(data)
    if how == "latin1":
        return text.decode().encode("latin-1", "replace")
    if how == "bytes":
        return text[: len(text) // 2] + b"\xff\xfe\x00" + text[len(text) // 2:]
    return text


def _deep_dump(value: Any) -> bytes:
    """JSON of any depth (the stdlib encoder recurses; iteratively here)."""
    out: list[bytes] = []
    stack: list[Any] = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, bytes):
            out.append(node)
        elif isinstance(node, dict):
            parts: list[Any] = [b"{"]
            for i, (k, v) in enumerate(node.items()):
                parts += [(b"," if i else b"") + orjson.dumps(str(k)) + b":", v]
            parts.append(b"}")
            stack.extend(reversed(parts))
        elif isinstance(node, list):
            parts = [b"["]
            for i, v in enumerate(node):
                if i:
                    parts.append(b",")
                parts.append(v)
            parts.append(b"]")
            stack.extend(reversed(parts))
        else:  # the stdlib writes integers of any size
            out.append(json.dumps(node, ensure_ascii=False).encode())
    return b"".join(out)


@st.composite
def webhook_bodies(draw: st.DrawFn) -> bytes:
    """Receipt / callback bodies: JSON of any shape, known-looking receipt fields, or bytes."""
    receipt = st.fixed_dictionaries({}, optional={
        "msgid": _ATTR_TEXT, "message_id": _ATTR_TEXT, "smsid": _ATTR_TEXT, "status": json_values,
        "parts": st.one_of(st.integers(-5, 10**7), json_values), "part": json_values, "to": json_values,
        "phone": json_values, "time": json_values, "done_date": json_values, "ORDER_NUMBER": json_values,
        "DATA": json_values, "transaction_id": json_values, "tran_id": json_values, "Type": json_values,
        "Message": json_values, "result": json_values, "error_code": json_values})
    value = draw(st.one_of(receipt, json_values, st.dictionaries(_PRINTABLE, json_values, max_size=6)))
    how = draw(st.sampled_from(["json", "json", "json", "bytes", "big", "deep"]))
    if how == "bytes":
        return draw(st.binary(max_size=300))
    if how == "big":
        return b'{"x":"' + b"a" * draw(st.sampled_from([300_000, 2_000_000])) + b'"}'
    if how == "deep":
        return b"[" * 5000 + b"]" * 5000
    try:
        return orjson.dumps(value)
    except (orjson.JSONEncodeError, TypeError):
        return _deep_dump(value)
