"""RFC 9457 problem+json responses."""

from __future__ import annotations

import math
from typing import Any

import orjson
from starlette.responses import Response

from shared.runtime.errors import DvciError, mapping_for

PROBLEM_JSON = "application/problem+json"


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    type_uri: str = "about:blank",
    retry_after: float | None = None,
    **extra: Any,
) -> Response:
    """A problem+json response; `extra` members (e.g. `errors`) are added to the body."""
    body: dict[str, Any] = {"type": type_uri, "title": title, "status": status, "detail": detail}
    body.update({k: v for k, v in extra.items() if v is not None})
    headers = {}
    if retry_after is not None:
        headers["retry-after"] = str(max(1, math.ceil(retry_after)))
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=headers)


def error_response(exc: BaseException) -> Response:
    """Map any exception through the error table to its problem response."""
    mapping = mapping_for(exc)
    if isinstance(exc, DvciError):
        return problem_response(
            mapping.status,
            exc.title,
            exc.detail,
            type_uri=mapping.type_uri,
            retry_after=exc.retry_after if mapping.retryable else None,
            errors=exc.errors or None,
        )
    return problem_response(
        mapping.status, "Internal error", type(exc).__name__, type_uri=mapping.type_uri, retry_after=1
    )
