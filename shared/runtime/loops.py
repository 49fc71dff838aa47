"""Per-event-loop singletons: a service, a client pool, anything bound to the loop it was created on.

    default_service = per_loop(_build_service)   # built on first use in each loop (after any fork)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class per_loop(Generic[T]):
    """Calling it returns the running loop's instance, building it with `factory` the first time."""

    def __init__(self, factory: Callable[[], T]):
        self.factory = factory
        self.instances: dict[int, T] = {}

    def __call__(self) -> T:
        key = id(asyncio.get_running_loop())
        instance = self.instances.get(key)
        if instance is None:
            instance = self.instances[key] = self.factory()
        return instance

    def clear(self) -> None:
        self.instances.clear()
