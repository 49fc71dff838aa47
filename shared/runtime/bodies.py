"""Reading a request body with a size limit: refused (413) past the limit without reading the rest."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from shared.runtime.problem import problem_response


class BodyTooLarge(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


async def read_body(request: Request, max_body: int) -> bytes:
    """The request body; BodyTooLarge past `max_body` bytes (by Content-Length, or while streaming)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body:
        raise BodyTooLarge(f"body of {declared} bytes over the {max_body}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_body:
            raise BodyTooLarge(f"body over the {max_body}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def too_large_response(exc: BodyTooLarge, what: str) -> Response:
    return problem_response(413, f"{what.capitalize()} too large", exc.reason, type_uri="urn:dvci:problem:too-large")
