"""The invariants the fuzzers check, and a driver that runs a hypothesis property against an in-process
ASGI client for a number of examples or a time budget.

Events: no 500 (no 5xx but 503), no traceback in a body; the answer is a reply event of a type the function
declares, a 202, or a 4xx problem+json (409/429/503 with Retry-After); every 4xx event a broker would have
dead-lettered is taken (202) and stored by the dead_letter sink. Webhooks: unsigned or wrongly signed ->
401/403/413 (or 400 before auth for an unreadable SNS envelope); signed garbage -> 400/409/503/200, never 500.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.strategies import Request, cloudevents, from_schema, webhook_bodies

_TRACE = re.compile(rb"Traceback \(most recent call last\)|File \"[^\"]+\.py\", line \d+")
_EXT = re.compile(r"^[a-z0-9]{1,20}$")


@dataclass
class Stats:
    examples: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    dead_lettered: int = 0

    def count(self, status: int) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1


def examples(default: int) -> int:
    """Examples per property: DVCI_FUZZ_EXAMPLES, else `default` (moderate: make test)."""
    return int(os.environ.get("DVCI_FUZZ_EXAMPLES", default))


def budget_s() -> float:
    """Seconds per property (`python -m fuzz` sets DVCI_FUZZ_SECONDS): keep drawing batches until spent."""
    return float(os.environ.get("DVCI_FUZZ_SECONDS", "0"))


def event_types(app: Any) -> dict[str, st.SearchStrategy[Any]]:
    return {t: from_schema(m.model_json_schema()) for t, m in app.catalogue()["takes"].items()}


def check_no_crash(status: int, body: bytes, what: str) -> None:
    assert status < 500 or status == 503, f"{what}: HTTP {status}: {body[:300]!r}"
    assert not _TRACE.search(body), f"{what}: traceback in the body: {body[:300]!r}"


def check_problem(status: int, headers: Any, body: bytes, what: str) -> None:
    assert headers.get("content-type", "").startswith("application/problem+json"), \
        f"{what}: HTTP {status} without problem+json: {headers.get('content-type')} {body[:200]!r}"
    problem = orjson.loads(body)
    assert problem["status"] == status and problem["title"], f"{what}: {problem}"
    if status in (409, 429, 503):
        assert headers.get("retry-after"), f"{what}: HTTP {status} without Retry-After"


def check_event_answer(app: Any, req: Request, status: int, headers: Any, body: bytes) -> None:
    what = f"{app.name} {req.mode} {req.event_type!r}"
    check_no_crash(status, body, what)
    if status == 200:
        replies = set(app.catalogue()["replies"])
        assert headers.get("ce-type") in replies, f"{what}: 200 with ce-type {headers.get('ce-type')!r}"
        assert headers.get("ce-id") and headers.get("ce-source"), what
        orjson.loads(body)
    elif status == 202:
        assert body == b"", f"{what}: 202 with a body"
    else:
        assert 400 <= status < 500 or status == 503, f"{what}: HTTP {status}"
        check_problem(status, headers, body, what)


def broker_forwards(req: Request) -> bool:
    """Whether a Knative broker would have taken this request as an event (and so may dead-letter it): a
    well-formed CloudEvent whose attributes we can name exactly."""
    return (req.exact and req.mode != "garbage" and bool(req.source and req.event_id and req.event_type)
            and all(_EXT.match(k) for k in req.extensions))


def dead_letter_request(req: Request, status: int) -> tuple[list[tuple[bytes, bytes]], bytes] | None:
    """The request as the broker delivers it to the dead-letter sink (knativeerror* extensions added)."""
    if req.mode == "binary":
        return [*req.headers, (b"ce-knativeerrorcode", str(status).encode()),
                (b"ce-knativeerrordest", b"http://function.dvci.svc/")], req.body
    try:
        obj = orjson.loads(req.body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    obj.update(knativeerrorcode=str(status), knativeerrordest="http://function.dvci.svc/")
    try:
        return req.headers, orjson.dumps(obj)
    except orjson.JSONEncodeError:
        from fuzz.strategies import _deep_dump

        return req.headers, _deep_dump(obj)


Post = Callable[[list[tuple[bytes, bytes]], bytes, str], Awaitable[tuple[int, Any, bytes]]]


def drive(prop: Callable[[Any], Coroutine[Any, Any, None]], strategy: st.SearchStrategy[Any], *, max_examples: int,
          loop: asyncio.AbstractEventLoop, seconds: float = 0.0) -> Stats:
    """Run `prop` (a coroutine function, run on `loop`) over `strategy` in this (worker) thread: one batch
    of `max_examples`, then more batches while `seconds` last. Call it through asyncio.to_thread."""
    stats = Stats()

    @settings(max_examples=max_examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck), print_blob=True)
    @given(strategy)
    def run(case: Any) -> None:
        stats.examples += 1
        asyncio.run_coroutine_threadsafe(prop(case), loop).result(timeout=120)

    assert threading.current_thread() is not threading.main_thread() or not loop.is_running()
    stop = time.monotonic() + seconds
    run()
    while time.monotonic() < stop:
        run()
    return stats


async def fuzz_events(app: Any, post: Post, dead_letter: Post | None, store: Any, *, max_examples: int,
                      seconds: float = 0.0, types: dict[str, st.SearchStrategy[Any]] | None = None) -> Stats:
    """Property: every generated event request to `app` gets an answer of the contract; 4xx events the broker
    would dead-letter are taken and stored by the dead_letter sink (`store`: a DeadLetterStore)."""
    loop = asyncio.get_running_loop()
    stats = Stats()

    async def prop(req: Request) -> None:
        status, headers, body = await post(req.headers, req.body, "/")
        stats.count(status)
        check_event_answer(app, req, status, headers, body)
        if dead_letter is None or not (400 <= status < 500) or not broker_forwards(req):
            return
        forwarded = dead_letter_request(req, status)
        if forwarded is None:
            return
        dl_status, _dl_headers, dl_body = await dead_letter(*forwarded, "/")
        check_no_crash(dl_status, dl_body, f"dead_letter after {app.name} {status}")
        if status == 413:  # the sink has the same body limit: a broker cannot deliver it there either
            return
        assert dl_status == 202, f"dead_letter refused a {status} event of {app.name}: {dl_status} {dl_body[:300]!r}"
        from shared.reliability.keys import event_digest

        assert req.source is not None and req.event_id is not None
        letter = await store.get(event_digest(req.source, req.event_id, length=16))
        assert letter is not None, f"dead letter of {req.source!r}/{req.event_id!r} not stored"
        stats.dead_lettered += 1

    found = await asyncio.to_thread(drive, prop, cloudevents(types if types is not None else event_types(app)),
                                    max_examples=max_examples, loop=loop, seconds=seconds)
    stats.examples = found.examples
    return stats


@dataclass
class WebhookCase:
    path: str
    body: bytes
    headers: list[tuple[bytes, bytes]]
    signed: bool


async def fuzz_webhooks(app: Any, post: Post, auths: dict[str, Any], *, max_examples: int,
                        seconds: float = 0.0) -> Stats:
    """Property: random bodies/headers to every route of `app`: unsigned -> 401/403/413 (400 for an SNS
    envelope that is not JSON), signed -> never 5xx but 503; no traceback."""
    from shared.security.webhooks import signed_headers

    paths = sorted(path for method, path in app.routes if method == "POST")
    loop = asyncio.get_running_loop()
    stats = Stats()
    junk_headers = st.lists(st.tuples(st.sampled_from([b"x-dvci-signature", b"authorization", b"token",
                                                       b"content-type", b"x-amz-sns-message-type"]),
                                      st.binary(min_size=1, max_size=40).filter(lambda b: b"\n" not in b
                                                                                 and b"\r" not in b)),
                            max_size=3)

    @st.composite
    def cases(draw: st.DrawFn) -> WebhookCase:
        path = draw(st.sampled_from(paths))
        body = draw(webhook_bodies())
        headers = [(b"content-type", b"application/json"), *draw(junk_headers)]
        auth = auths.get(path)
        signed = auth is not None and draw(st.booleans())
        if signed and auth is not None:
            headers += [(k.encode(), v.encode()) for k, v in signed_headers(auth, body).items()]
        return WebhookCase(path, body, headers, signed)

    async def prop(case: WebhookCase) -> None:
        status, headers, body = await post(case.headers, case.body, case.path)
        stats.count(status)
        what = f"{app.name} {case.path} signed={case.signed}"
        check_no_crash(status, body, what)
        if status >= 400 and status not in (404, 409):
            check_problem(status, headers, body, what)
        if not case.signed:
            allowed = {401, 403, 413} | ({400} if case.path == "/ses/notifications" else set())
            assert status in allowed, f"{what}: unsigned answered {status}: {body[:200]!r}"

    found = await asyncio.to_thread(drive, prop, cases(), max_examples=max_examples, loop=loop, seconds=seconds)
    stats.examples = found.examples
    return stats
