"""SMS content: brandnames and their registered templates, diacritics policy, encoding and segments.

`prepare(...)` turns a request into the exact text to send, or raises ContentRejected (a business outcome:
`content_rejected`, decided before any provider is called)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import Any

import yaml

from shared.integrations.sms import Encoding, encoding

_PARAM = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
#: control characters other than CR and LF: no gateway takes them (Viettel answers a malformed-XML fault)
_CONTROL = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class ContentRejected(ValueError):
    """The text cannot be sent under this brandname (no template matches, unknown template, params)."""


@dataclass(frozen=True, slots=True)
class Template:
    id: str
    text: str

    @property
    def params(self) -> list[str]:
        return _PARAM.findall(self.text)

    def render(self, params: dict[str, Any]) -> str:
        missing = [p for p in self.params if str(params.get(p, "")).strip() == ""]
        if missing:
            raise ContentRejected(f"template {self.id} needs parameter(s): {', '.join(missing)}")
        composite = [p for p in self.params if not isinstance(params[p], str | int | float)]
        if composite:
            raise ContentRejected(f"template {self.id}: parameter(s) {', '.join(composite)} must be text or numbers")
        return _PARAM.sub(lambda m: str(params[m.group(1)]), self.text)

    def matches(self, text: str) -> bool:
        pattern = "".join(".+?" if i % 2 else re.escape(part)
                          for i, part in enumerate(_PARAM.split(self.text)))
        return re.fullmatch(pattern, text, re.S) is not None


@dataclass(frozen=True, slots=True)
class Brandnames:
    default: str
    templates: dict[str, dict[str, Template] | None]
    unsigned_by_default: dict[str, bool]


@lru_cache(maxsize=1)
def brandnames() -> Brandnames:
    data = yaml.safe_load(files("shared.integrations.sms").joinpath("brandnames.yaml").read_text())
    templates: dict[str, dict[str, Template] | None] = {}
    for name, spec in data["brandnames"].items():
        t = (spec or {}).get("templates")
        templates[name] = {tid: Template(tid, text) for tid, text in t.items()} if t else None
    return Brandnames(data["default"], templates, dict(data.get("unsigned_by_default") or {}))


@dataclass(frozen=True, slots=True)
class Prepared:
    text: str
    encoding: Encoding
    segments: int
    brandname: str


def prepare(*, text: str | None, template_id: str | None, params: dict[str, Any] | None, category: str,
            brandname: str | None, unsigned: bool | None) -> Prepared:
    """The text to send: rendered from a template or checked against the brandname's templates, with
    diacritics stripped when the category's policy (or the request) says so."""
    book = brandnames()
    name = brandname or book.default
    if name not in book.templates:
        raise ContentRejected(f"brandname {name!r} is not registered")
    registered = book.templates[name]
    if template_id is not None:
        if not registered or template_id not in registered:
            raise ContentRejected(f"brandname {name} has no template {template_id!r}")
        body = registered[template_id].render(params or {})
    elif text is not None:
        body = text
    else:
        raise ContentRejected("either text or template_id is required")
    if not body.strip():
        raise ContentRejected("the text is blank")
    if _CONTROL.search(body):
        raise ContentRejected("the text contains control characters")
    if category == "advertising" and not body.lstrip().upper().startswith(("[QC]", "[AD]")):
        body = "[QC] " + body  # Decree 91/2020: advertising is labelled
    strip = book.unsigned_by_default.get(category, False) if unsigned is None else unsigned
    if strip:
        body = encoding.strip_diacritics(body)
    if registered and template_id is None:
        if not any(t.matches(body) for t in registered.values()):
            raise ContentRejected(f"text matches none of the templates registered for {name}")
    enc = encoding.detect(body)
    return Prepared(body, enc, encoding.segments(body, enc), name)
