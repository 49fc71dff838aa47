"""`python -m bench.audit [--n 5000] [--json]`: what the audit trail and citizen-data encryption cost per event.

Measured against real Redis (REDIS_URL, or the embedded server), one process, sequential (latency, not
throughput):
- `complete` of the reliability pipeline (one Lua call) with a typical SMS reply: plaintext vs encrypted
  reply + encrypted correlation `to` (what the hot path pays for encryption), and without vs with the
  per-event audit entry (the XADD in the same call: the hot path's whole audit cost);
- encrypt + decrypt of a typical stored reply (~600 bytes) in-process, and one blind index;
- what the `audit-seal` job pays per record to chain the per-kind entries (absorb, batches of 500);
- one operator record appended to the fleet-wide chain (`Audit.record`: compare-and-append round trips).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from typing import Any

import orjson

REPLY = orjson.dumps({"s": 200, "h": {"ce-specversion": "1.0", "ce-id": str(uuid.uuid4()),
                                      "ce-source": "/dvci/send-sms", "ce-type": "vn.gov.dvc.sms.accepted",
                                      "ce-time": "2026-11-28T14:00:00+07:00",
                                      "ce-dossierid": "H29.1-2026-000123", "content-type": "application/json"},
                      "b": orjson.dumps({"to": "+84912345678", "provider": "viettel", "provider_message_id":
                                         "1234567890", "segments": 1, "encoding": "gsm7", "cost_vnd": 650}).decode()})
AUDIT = {"kind": "sms", "provider": "viettel", "ref": "7c1e0a4b9d2f3e4a5b6c7d8e", "outcome": "accepted",
         "segments": 1, "carrier": "viettel", "category": "transactional", "encoding": "gsm7", "cost_vnd": 650.0}


def _us(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    return {"mean_us": round(statistics.fmean(s) * 1e6, 1), "p50_us": round(s[len(s) // 2] * 1e6, 1),
            "p99_us": round(s[int(len(s) * 0.99) - 1] * 1e6, 1)}


async def _complete(pipeline: Any, n: int, *, encrypted: bool, audit: bool) -> list[float]:
    from shared.reliability.pipeline import _SCRIPT
    from shared.security.crypto import seal_fields, seal_reply

    out = []
    for i in range(n):
        key = pipeline.keys.key("sms", "idem", f"bench-{uuid.uuid4().hex}")
        fields = {"to": "+84912345678", "nf": "x" * 24, "segments": "1", "carrier": "viettel",
                  "source": "/dvc/core", "id": str(i)}
        t0 = time.perf_counter()
        resp = await seal_reply(REPLY, key) if encrypted else REPLY.decode()
        corr = await seal_fields(fields, ("to",), "corr") if encrypted else fields
        spec = {"resp": resp, "ttl": 60_000, "audit": AUDIT if audit else None,
                "corr": {"fields": corr, "ttl": 60_000, "id": str(i), "lookup": False}}
        ckey = pipeline.keys.key("sms", "dlr", "bench", str(i))
        await pipeline.redis.evalsha(_SCRIPT, [key, pipeline.breaker_stream, key, pipeline.audit_stream, ckey, ckey,
                                               ckey], ["complete", orjson.dumps({k: v for k, v in spec.items()
                                                                                 if v is not None})])
        out.append(time.perf_counter() - t0)
    return out


async def run(n: int) -> dict[str, Any]:
    from shared.reliability.pipeline import Pipeline
    from shared.security.audit import Audit
    from shared.security.crypto import blind_index, default_crypto
    from shared.storage.redis import Keys, close_clients, get_fast_redis, get_redis

    env = f"bench-audit-{os.getpid()}"
    keys = Keys(env)
    redis = get_redis()
    pipeline = Pipeline(get_fast_redis(), keys, "sms", {})
    crypto = default_crypto()
    results: dict[str, Any] = {"n": n}
    try:
        await _complete(pipeline, 200, encrypted=True, audit=True)  # warm up (script load, data key)
        plain: list[float] = []
        with_audit: list[float] = []
        both: list[float] = []
        for _ in range(max(1, n // 100)):  # interleaved rounds: drift and neighbours' load hit all three alike
            plain += await _complete(pipeline, 100, encrypted=False, audit=False)
            with_audit += await _complete(pipeline, 100, encrypted=False, audit=True)
            both += await _complete(pipeline, 100, encrypted=True, audit=True)
        results["complete_plain"] = _us(plain)
        results["complete_with_audit_entry"] = _us(with_audit)
        results["complete_with_audit_and_encryption"] = _us(both)
        # medians: robust to the odd stall of a shared machine
        results["audit_cost_per_event_us"] = round((statistics.median(with_audit) - statistics.median(plain)) * 1e6, 1)
        results["encryption_cost_per_event_us"] = round(
            (statistics.median(both) - statistics.median(with_audit)) * 1e6, 1)

        enc, dec, idx = [], [], []
        for _ in range(n):
            t0 = time.perf_counter()
            token = await crypto.encrypt(REPLY, b"ctx")
            t1 = time.perf_counter()
            await crypto.decrypt(token, b"ctx")
            t2 = time.perf_counter()
            blind_index("sms.rcpt", "+84912345678")
            idx.append(time.perf_counter() - t2)
            enc.append(t1 - t0)
            dec.append(t2 - t1)
        results["encrypt_reply"] = _us(enc)
        results["decrypt_reply"] = _us(dec)
        results["blind_index"] = _us(idx)
        results["stored_reply_bytes"] = {"plain": len(REPLY), "encrypted": len(token)}

        audit = Audit(redis, keys)
        t0 = time.perf_counter()
        absorbed = await audit.absorb()
        took = time.perf_counter() - t0
        results["absorb_per_record_us"] = round(took / max(absorbed, 1) * 1e6, 1)
        results["absorbed"] = absorbed
        rec = []
        for i in range(min(n, 1000)):
            t0 = time.perf_counter()
            await audit.record(actor="user:bench", action="bench.op", kind="bench", subject=str(i))
            rec.append(time.perf_counter() - t0)
        results["operator_record"] = _us(rec)
    finally:
        batch = [k async for k in redis.scan_iter(match=f"dvci:{env}:*", count=1000)]
        for i in range(0, len(batch), 500):
            await redis.delete(*batch[i:i + 500])
        await close_clients()
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--n", type=int, default=5000)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    res = asyncio.run(run(args.n))
    if args.json:
        print(orjson.dumps(res, option=orjson.OPT_INDENT_2).decode())
        return
    print(f"audit + encryption cost per event (n={res['n']}, sequential, one process)")
    for name in ("complete_plain", "complete_with_audit_entry", "complete_with_audit_and_encryption",
                 "encrypt_reply", "decrypt_reply", "blind_index", "operator_record"):
        r = res[name]
        print(f"  {name:38} mean {r['mean_us']:>8} us  p50 {r['p50_us']:>8} us  p99 {r['p99_us']:>8} us")
    print(f"  audit entry on the hot path: {res['audit_cost_per_event_us']} us/event; "
          f"encryption: {res['encryption_cost_per_event_us']} us/event; "
          f"chaining at seal time: {res['absorb_per_record_us']} us/record ({res['absorbed']} absorbed)")
    print(f"  stored reply: {res['stored_reply_bytes']['plain']} B plain, "
          f"{res['stored_reply_bytes']['encrypted']} B encrypted")


if __name__ == "__main__":
    main()
