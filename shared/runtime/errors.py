"""The project's error classes and the one table mapping them to HTTP answers (docs/architecture.md).

4xx other than 404/408/409/429 are dead-lettered by the broker at once; 409/429/503 are retried.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class DvciError(Exception):
    """Base of every error the runtime turns into an HTTP answer."""

    title = "Internal error"
    retry_after: float | None = None

    def __init__(self, detail: str, *, retry_after: float | None = None, errors: list[dict] | None = None):
        super().__init__(detail)
        self.detail = detail
        if retry_after is not None:
            self.retry_after = retry_after
        self.errors = errors or []


class InvalidEvent(DvciError):
    """The request is not a valid CloudEvent or its data fails its model: it can never succeed."""

    title = "Invalid CloudEvent"


class UnknownEventType(InvalidEvent):
    title = "Unknown event type"


class ConflictingReuse(DvciError):
    """The same (source, id) arrived again with a different payload."""

    title = "Conflicting reuse of an event id"


class EventInProgress(DvciError):
    """The same event is being processed right now by another instance."""

    title = "Event in progress"
    retry_after = 1.0


class RateLimited(DvciError):
    """A provider's contract rate is exhausted; the broker should retry after `retry_after`."""

    title = "Rate limited"
    retry_after = 1.0


class ProvidersUnavailable(DvciError):
    """Every provider that could serve the event is unavailable (breakers open, failing, ambiguous)."""

    title = "Providers unavailable"
    retry_after = 5.0


class StateUnavailable(DvciError):
    """Redis (idempotency, breakers, limits) is unreachable: fail closed, send nothing."""

    title = "State store unavailable"
    retry_after = 2.0


@dataclass(frozen=True)
class ErrorMapping:
    status: int
    type_uri: str
    retryable: bool = field(default=False)


#: The one exception table. Order matters: the first matching class wins.
ERROR_TABLE: list[tuple[type[Exception], ErrorMapping]] = [
    (UnknownEventType, ErrorMapping(400, "urn:dvci:problem:unknown-event-type")),
    (InvalidEvent, ErrorMapping(400, "urn:dvci:problem:invalid-event")),
    (ConflictingReuse, ErrorMapping(400, "urn:dvci:problem:conflicting-reuse")),
    (EventInProgress, ErrorMapping(409, "urn:dvci:problem:in-progress", retryable=True)),
    (RateLimited, ErrorMapping(429, "urn:dvci:problem:rate-limited", retryable=True)),
    (ProvidersUnavailable, ErrorMapping(503, "urn:dvci:problem:providers-unavailable", retryable=True)),
    (StateUnavailable, ErrorMapping(503, "urn:dvci:problem:state-unavailable", retryable=True)),
]

INTERNAL = ErrorMapping(500, "urn:dvci:problem:internal", retryable=True)


def mapping_for(exc: BaseException) -> ErrorMapping:
    """The HTTP mapping of an exception (500, retryable, for anything unexpected)."""
    for cls, mapping in ERROR_TABLE:
        if isinstance(exc, cls):
            return mapping
    return INTERNAL
