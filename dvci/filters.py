"""Knative Trigger filters: legacy `filter.attributes` and the `filters` dialects (exact, prefix, suffix,
all, any, not). CESQL is not supported locally and is reported as such."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class UnsupportedFilter(ValueError):
    pass


def match_attributes(attrs: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    """Legacy filter: every listed attribute equals (an empty value matches any value present)."""
    for name, value in wanted.items():
        if name not in attrs:
            return False
        if value != "" and attrs[name] != value:
            return False
    return True


def match(attrs: Mapping[str, str], expr: Mapping[str, Any]) -> bool:
    """One `filters` expression; an expression with several dialects must satisfy all of them."""
    for dialect, arg in expr.items():
        if dialect == "exact":
            ok = all(attrs.get(k) == v for k, v in arg.items())
        elif dialect == "prefix":
            ok = all(k in attrs and attrs[k].startswith(v) for k, v in arg.items())
        elif dialect == "suffix":
            ok = all(k in attrs and attrs[k].endswith(v) for k, v in arg.items())
        elif dialect == "all":
            ok = all(match(attrs, e) for e in arg)
        elif dialect == "any":
            ok = any(match(attrs, e) for e in arg)
        elif dialect == "not":
            ok = not match(attrs, arg)
        else:
            raise UnsupportedFilter(f"filter dialect {dialect!r} is not supported by the local broker")
        if not ok:
            return False
    return True


def trigger_matches(attrs: Mapping[str, str], filter_attributes: Mapping[str, str],
                    filters: Sequence[Mapping[str, Any]]) -> bool:
    """`filters` wins over the legacy `filter` when both are set (as in Knative)."""
    if filters:
        return all(match(attrs, f) for f in filters)
    return match_attributes(attrs, filter_attributes)
