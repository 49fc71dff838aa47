"""Normalised tracking statuses: the per-carrier code tables (YAML data next to each carrier module), the
rank that keeps a shipment's status from moving back, and the final statuses."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.resources import files

import yaml

from shared.integrations.postal import STATUSES

# a status never moves to a lower rank; equal ranks may alternate by event time (a second delivery attempt)
RANK = {"pre_transit": 0, "picked_up": 1, "in_transit": 2, "exception": 2, "out_for_delivery": 3,
        "delivery_failed": 3, "returning": 4, "delivered": 9, "returned": 9, "cancelled": 9}
TERMINAL = frozenset(("delivered", "returned", "cancelled"))


@dataclass(frozen=True, slots=True)
class Mapped:
    status: str
    description: str


@cache
def table(carrier: str) -> dict[str, Mapped]:
    raw = yaml.safe_load(files("shared.integrations.postal").joinpath(f"{carrier}_statuses.yaml").read_text())
    out = {}
    for code, entry in raw["codes"].items():
        if entry["status"] not in STATUSES:
            raise ValueError(f"{carrier} code {code}: unknown status {entry['status']}")
        out[str(code)] = Mapped(entry["status"], entry["description"])
    return out


def normalise(carrier: str, code: str) -> Mapped:
    """The normalised status of a carrier code; unknown codes are `exception` (and logged by the caller)."""
    return table(carrier).get(str(code).strip(), Mapped("exception", f"unknown {carrier} status {code}"))
