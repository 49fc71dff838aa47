"""LGSP / Cổng DVCQG integration: dossier status sync to each target, citizen lookup.

A sync target implements `SyncTarget`: it pushes one dossier's current state (and, when it keeps them,
its processing-step rows in order) and can say what it holds. Failures use the shared vocabulary:
ProviderRejected (validation: never retried), ProviderUnavailable (certainly not taken), ProviderAmbiguous
(may have been taken: re-sent under the same reference). Dates leave here as `yyyyMMddHHmmss` in
Asia/Ho_Chi_Minh whatever offset they came with.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib.resources import files
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import yaml

KIND = "lgsp"
HCM = ZoneInfo("Asia/Ho_Chi_Minh")


@dataclass(slots=True)
class Pending:
    """What one push carries for one dossier: its latest state and the step rows waiting, in order."""

    dossier_id: str
    version: int | None          # version of `state` (None: only step rows)
    state: dict[str, Any] | None  # the status.changed data of that version
    steps: list[tuple[int, dict[str, Any]]]  # (version, step + the fields a row needs), ascending
    known: bool | None           # the target already holds the record (None: not sure)
    reference: str               # derived from (target, dossier, state version): a re-send keeps it


@dataclass(slots=True)
class Pushed:
    known: bool = True
    calls: int = 1


class SyncTarget(Protocol):
    name: str
    keeps_steps: bool

    async def push(self, item: Pending) -> Pushed:
        """Deliver `item`; raise ProviderRejected / ProviderUnavailable / ProviderAmbiguous."""

    async def current_status(self, dossier_id: str) -> str | None:
        """The target's status code for the dossier, None when it does not hold it (reconcile)."""


class PopulationSource(Protocol):
    """The national population database (CSDLQG về dân cư), reached through LGSP/NDXP."""

    name: str

    async def lookup(self, citizen_id: str, full_name: str | None, birth_date: str | None,
                     request_id: str) -> dict[str, Any] | None:
        """The citizen's record ({citizen_id, full_name, birth_date, gender, permanent_address}) or None."""


@cache
def mapping(name: str) -> dict[str, Any]:
    """A data file of `mappings/` (status and channel codes per target)."""
    return yaml.safe_load(files("shared.integrations.lgsp.mappings").joinpath(f"{name}.yaml").read_text("utf-8"))


def portal_time(value: str | datetime | None) -> str:
    """`yyyyMMddHHmmss` in Asia/Ho_Chi_Minh ("" for no date); naive values are taken as Vietnam time."""
    if value is None or value == "":
        return ""
    dt = datetime.fromisoformat(value) if isinstance(value, str) else value
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=HCM)
    return dt.astimezone(HCM).strftime("%Y%m%d%H%M%S")


def local_iso(ts: float) -> str:
    """RFC 3339 with the Vietnam offset."""
    return datetime.fromtimestamp(ts, HCM).isoformat(timespec="seconds")
