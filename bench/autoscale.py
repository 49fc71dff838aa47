"""Knative autoscaling set from measurements: `python -m bench.autoscale` (`make autoscaling`) reads
bench/results.json (a full `make bench`), writes infra/autoscaling.json and sets each Service's annotations
and containerConcurrency in infra/knative/base/ to it; tests/test_infra.py checks the manifests match.

Per function, from its saturation point S (events/s one pod, one worker, one CPU, sustains in the bench):
- metric `rps`, target = 70% of S (headroom for bursts, GC, noisy neighbours; the KPA adds pods before a
  pod saturates); functions that wait on slow remotes (signing: an HSM, a TSA) scale on concurrency;
- containerConcurrency = in-flight requests at the target with the provider latency budget (250 ms for SMS
  gateways: ~the p99 of a real one, the sandbox answers in ~1 ms), so a slow provider queues in the
  queue-proxy instead of piling coroutines into one worker;
- max-scale = the design peak / target (docs/capacity.md), min-scale 1 for send_sms (citizens wait on OTPs),
  0 for the cold paths (postal, signing, dead letters, e-mail);
- a function the run did not measure keeps its reviewed values (`measured_ev_s_per_pod: null`), or what
  an earlier run measured.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "infra" / "autoscaling.json"
BASE = ROOT / "infra" / "knative" / "base"
HEADROOM = 0.7
# design peaks, events/s (docs/capacity.md): SMS carries the 30,000 ev/s national peak
PEAKS = {"send_sms": 30_000, "postal_create": 300, "postal_track": 3_000, "sign_document": 100}
LATENCY_BUDGET_S = {"send_sms": 0.25, "postal_create": 0.5, "postal_track": 0.1}
# what the run did not measure keeps its reviewed values: (service, min, max, metric, target, containerConcurrency)
DEFAULTS: dict[str, tuple[str, int, int, str | None, int, int, str]] = {
    "send_sms": ("send-sms", 1, 20, "concurrency", 100, 200, "not measured yet: reviewed values"),
    "send_email": ("send-email", 0, 10, "concurrency", 50, 100, "not benched: SMTP/SES latency bound"),
    "lgsp_sync": ("lgsp-sync", 1, 10, "concurrency", 100, 200,
                  "bounded by the national portal's contract rate (bench/lgsp.py drains at it); its jobs keep one "
                  "instance"),
    "postal_create": ("postal-create", 0, 10, "concurrency", 50, 100, "cold path; not measured in this run"),
    "postal_track": ("postal-track", 0, 10, "concurrency", 100, 200, "cold path; not measured in this run"),
    "sign_document": ("sign-document", 0, 10, "concurrency", 8, 16, "cold path: waits on the HSM and TSA"),
    "dead_letter": ("dead-letter", 0, 3, "concurrency", 50, 100, "cold path: dead letters are rare"),
    "console": ("console", 1, 2, None, 0, 50, "the operators' console, not an event path: answers at once"),
}


def _measured(results: dict[str, Any]) -> dict[str, float | None]:
    functions = results.get("functions") or {}
    postal, signing = functions.get("postal") or {}, functions.get("signing") or {}
    return {
        "send_sms": (results.get("throughput") or {}).get("rate"),
        "postal_create": (postal.get("create_with_label") or {}).get("rate_per_s"),
        "postal_track": (postal.get("tracking_webhooks") or {}).get("rate_per_s"),
        "sign_document": signing.get("pades_bb_per_s"),
    }


def proposal(results: dict[str, Any]) -> dict[str, Any]:
    """The autoscaling table for these bench results (functions the run did not measure are left out)."""
    table: dict[str, Any] = {}
    services = {"send_sms": "send-sms", "postal_create": "postal-create", "postal_track": "postal-track",
                "sign_document": "sign-document"}
    for name, rate in _measured(results).items():
        if not rate:
            continue
        target = max(1, int(rate * HEADROOM))
        row: dict[str, Any] = {"service": services[name], "measured_ev_s_per_pod": round(rate, 1),
                               "measured_at": results.get("at"),
                               "min_scale": 1 if name == "send_sms" else 0,
                               "max_scale": max(2, math.ceil(PEAKS[name] / target))}
        if name == "sign_document":  # waits on the HSM/TSA: in-flight signatures are the load
            row.update(metric="concurrency", target=8, container_concurrency=16,
                       basis="concurrency: signing waits on the HSM and TSA")
        else:
            cc = max(100, int(math.ceil(target * LATENCY_BUDGET_S[name] / 50) * 50))
            row.update(metric="rps", target=target, container_concurrency=cc,
                       basis=f"{HEADROOM:.0%} of the saturation point; containerConcurrency = target x "
                             f"{LATENCY_BUDGET_S[name]} s provider latency budget")
        table[name] = row
    for name, (svc, lo, hi, metric, target, cc, basis) in DEFAULTS.items():
        table.setdefault(name, {"service": svc, "measured_ev_s_per_pod": None, "min_scale": lo, "max_scale": hi,
                                "metric": metric, "target": target, "container_concurrency": cc, "basis": basis})
    return {"source": {"at": results.get("at"), "cpus": results.get("cpus"), "quick": results.get("quick")},
            "headroom": HEADROOM, "peaks_ev_s": PEAKS, "functions": dict(sorted(table.items()))}


def manifest_values(text: str) -> dict[str, Any]:
    """The autoscaling settings of one Knative Service manifest (the first Service in the file)."""
    def annotation(name: str) -> str | None:
        m = re.search(rf"autoscaling\.knative\.dev/{name}: \"?([\w.]+)\"?", text)
        return m.group(1) if m else None

    cc = re.search(r"containerConcurrency: (\d+)", text)
    return {"min_scale": int(annotation("min-scale") or 0), "max_scale": int(annotation("max-scale") or 0),
            "metric": annotation("metric"), "target": int(annotation("target") or 0),
            "container_concurrency": int(cc.group(1)) if cc else None}


def apply(table: dict[str, Any]) -> list[str]:
    """Set the manifests' values to the table (only those lines); returns the files changed."""
    changed = []
    for row in table["functions"].values():
        path = BASE / f"{row['service']}.yaml"
        text = original = path.read_text()
        for name, value in (("min-scale", row["min_scale"]), ("max-scale", row["max_scale"]),
                            ("metric", row["metric"]), ("target", row["target"])):
            if value is None or (name == "target" and not value):
                continue
            quoted = f'"{value}"' if name != "metric" else str(value)
            text = re.sub(rf"(autoscaling\.knative\.dev/{name}: )\"?[\w.]+\"?", rf"\g<1>{quoted}", text, count=1)
        text = re.sub(r"(containerConcurrency: )\d+", rf"\g<1>{row['container_concurrency']}", text, count=1)
        if text != original:
            path.write_text(text)
            changed.append(str(path.relative_to(ROOT)))
    return changed


def main() -> int:
    results = orjson.loads((ROOT / "bench" / "results.json").read_bytes())
    if results.get("quick"):
        print("bench/results.json is from `make bench-quick`: run `make bench` first", file=sys.stderr)
        return 1
    table = proposal(results)
    if TABLE.exists():  # keep measured rows a partial run did not re-measure
        previous = orjson.loads(TABLE.read_bytes())["functions"]
        for name, row in previous.items():
            if row.get("measured_ev_s_per_pod") and not table["functions"][name].get("measured_ev_s_per_pod"):
                row.setdefault("measured_at", orjson.loads(TABLE.read_bytes())["source"].get("at"))
                table["functions"][name] = row
    TABLE.write_bytes(orjson.dumps(table, option=orjson.OPT_INDENT_2) + b"\n")
    for name in apply(table):
        print(f"updated {name}")
    print(f"wrote {TABLE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
