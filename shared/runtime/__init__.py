"""CloudEvents-over-HTTP runtime: what every function's main.py is built from."""

from shared.runtime.app import EventContext, FunctionApp, Replayed, Reply
from shared.runtime.events import CloudEvent

__all__ = ["CloudEvent", "EventContext", "FunctionApp", "Replayed", "Reply"]
