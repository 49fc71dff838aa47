"""Bare functions-framework: a CloudEvent "hello" (the SDK parses the event, 200 "OK"), no runtime of ours.
`make bench` serves it exactly as the functions are served (same server, same worker, same run) to show
what functions-framework alone allows: the runtime floor is compared with it."""

from __future__ import annotations

from typing import Any

import functions_framework.aio


@functions_framework.aio.cloud_event
async def handle(event: Any) -> None:
    event["id"]  # touch the event: parsed, not echoed
