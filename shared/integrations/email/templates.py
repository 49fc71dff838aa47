"""E-mail templates (Jinja2): one folder per template, subject / text / HTML per locale, declared params.

Autoescape on for HTML; an undefined variable is an error (`TemplateError` naming it), never a blank in a
citizen's letter; missing declared params are reported before rendering."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import Any

import jinja2


class TemplateError(ValueError):
    pass


_WEB_URL = re.compile(r"https?://[^\s\x00-\x1f\x7f\"'<>`]+", re.I)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


def _root() -> Any:
    return files("shared.integrations.email").joinpath("templates")


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FunctionLoader(lambda name: _root().joinpath(name).read_text()),
                              autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=False)


def names() -> list[str]:
    return sorted(p.name for p in _root().iterdir() if p.is_dir())


def declared_params(template: str) -> list[str]:
    return [line.strip() for line in _root().joinpath(template, "params.txt").read_text().splitlines() if line.strip()]


def render(template: str, locale: str, params: dict[str, Any]) -> Rendered:
    if template not in names():
        raise TemplateError(f"unknown template {template!r}; known: {', '.join(names())}")
    if locale not in ("vi", "en"):
        raise TemplateError(f"unknown locale {locale!r} (vi, en)")
    missing = [p for p in declared_params(template) if p not in params]
    if missing:
        raise TemplateError(f"template {template} needs parameter(s): {', '.join(missing)}")
    composite = [k for k, v in params.items() if not isinstance(v, str | int | float)]
    if composite:
        raise TemplateError(f"template {template}: parameter(s) {', '.join(composite)} must be text or numbers")
    links = [k for k, v in params.items() if k.endswith("_url") and not _WEB_URL.fullmatch(str(v))]
    if links:  # they land in an href: only absolute http(s) links, never javascript:/data:/relative
        raise TemplateError(f"template {template}: parameter(s) {', '.join(links)} must be http(s) URLs")
    env = _env()
    try:
        subject = env.get_template(f"{template}/subject.{locale}.txt").render(params).strip()
        text = env.get_template(f"{template}/body.{locale}.txt").render(params)
        html = env.get_template(f"{template}/body.{locale}.html").render(params)
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"template {template}: {exc.message}") from exc
    if _CONTROL.search(subject):
        raise TemplateError(f"template {template}: the subject would contain control characters (CR, LF, ...)")
    return Rendered(subject, text, html)
