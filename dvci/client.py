"""Talking to a running stack: the broker's ingress and inspector, the state of `dvci dev`."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from shared.runtime.events import CloudEvent, binary_headers, now_rfc3339

STATE_FILE = Path(".dvci/dev.json")


class StackError(RuntimeError):
    """A one-line reason the CLI prints."""


def dev_state() -> dict[str, Any]:
    try:
        return orjson.loads(STATE_FILE.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return {}


def broker_url() -> str:
    return os.environ.get("DVCI_BROKER_URL") or dev_state().get("broker") or "http://127.0.0.1:8080/"


def redis_url() -> str:
    url = os.environ.get("REDIS_URL") or dev_state().get("redis_url")
    if not url:
        raise StackError("no Redis: set REDIS_URL or start `dvci dev` (it records its Redis in .dvci/dev.json)")
    return url


def env_name() -> str:
    return os.environ.get("DVCI_ENV") or dev_state().get("env") or "dev"


def make_event(event_type: str, data: Any, source: str = "/dvci/cli", event_id: str | None = None,
               extensions: dict[str, str] | None = None) -> CloudEvent:
    return CloudEvent(id=event_id or str(uuid.uuid4()), source=source, type=event_type, time=now_rfc3339(),
                      extensions=dict(extensions or {}), data=data)


async def post_event(session: aiohttp.ClientSession, url: str, event: CloudEvent) -> tuple[int, bytes]:
    async with session.post(url, data=event.data_bytes(), headers=binary_headers(event)) as resp:
        return resp.status, await resp.read()


async def follow(session: aiohttp.ClientSession, base: str, event: CloudEvent, wait_s: float,
                 until_types: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The chain of events that followed `event` through the broker (its replies and theirs)."""
    deadline = time.monotonic() + wait_s
    seen: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        seen = await _chain(session, base, event.id, event.source)
        settled = seen and all(all(d["outcome"] != "pending" for d in e["deliveries"]) for e in seen)
        if settled or (until_types and any(e["type"] in until_types for e in seen)):
            return seen
        await asyncio.sleep(0.1)
    return seen


async def receipts_for(session: aiohttp.ClientSession, base: str, message_ids: set[str], wait_s: float
                       ) -> list[dict[str, Any]]:
    """`vn.gov.dvc.sms.delivery.updated` events (emitted to the broker by send_sms) for these messages."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        async with session.get(f"{base}_broker/events",
                               params={"type": "vn.gov.dvc.sms.delivery.updated", "limit": "500"}) as resp:
            events = (await resp.json())["events"]
        found = [e for e in events if (e.get("data") or {}).get("provider_message_id") in message_ids]
        if found and all(e["data"]["status"] in ("delivered", "failed", "expired") for e in found):
            return found
        await asyncio.sleep(0.25)
    return []


async def emitted(session: aiohttp.ClientSession, base: str, event_type: str, match: dict[str, Any],
                  wait_s: float) -> dict[str, Any] | None:
    """The first event of `event_type` in the broker whose data has every (key, value) of `match`."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        async with session.get(f"{base}_broker/events", params={"type": event_type, "limit": "500"}) as resp:
            events = (await resp.json())["events"]
        for e in events:
            data = e.get("data") or {}
            if all(data.get(k) == v for k, v in match.items()):
                return e
        await asyncio.sleep(0.25)
    return None


async def _chain(session: aiohttp.ClientSession, base: str, event_id: str, source: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    frontier = [(event_id, source)]
    while frontier:
        eid, src = frontier.pop(0)
        async with session.get(f"{base}_broker/events/{eid}", params={"source": src}) as resp:
            if resp.status != 200:
                continue
            body = await resp.json()
        out.append(body["event"])
        frontier += [(r["id"], r["source"]) for r in body["event"]["replies"]]
    return out
