"""`make chaos`: 10,000+ events through `dvci dev`'s broker while providers fail (30% errors, 5% timeouts
after receipt), Redis restarts once and the send_sms process is killed once. Prints the ledger; exits 1
if any event got two messages, or ended with neither an outcome nor a dead letter."""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import aiohttp
import orjson

from dvci.client import STATE_FILE
from dvci.dev import DevStack
from shared.integrations.registry import registry
from shared.reliability.keys import event_digest
from shared.runtime.events import CloudEvent, binary_headers

TYPE = "vn.gov.dvc.sms.send.requested"
_SMS = registry("sms").names()
POLICY = f"""
order: [{", ".join(_SMS)}]
breaker_defaults: {{mode: rate, window_ms: 10000, min_calls: 50, failure_rate_pct: 60, cooldown_ms: 2000,
                   probe_lease_ms: 3000}}
providers:
""" + "".join(f"  {name}: {{tps: 3000, burst: 300}}\n" for name in _SMS) + """recipient_limits:
  transactional: {rate: 5, period_s: 3600, burst: 5}
"""
TEXTS = ["Ho so {d} cua ong/ba da duoc tiep nhan. Tra cuu tai dichvucong.gov.vn",
         "Hồ sơ {d} đã có kết quả. Mời ông/bà nhận kết quả tại bộ phận một cửa.",
         "Ho so {d} can bo sung giay to. Vui long kiem tra email hoac dang nhap Cong DVC."]


def reference(source: str, event_id: str) -> str:
    """The client reference send_sms gives the gateways (shared/integrations/sms/service.py:reference_for)."""
    return event_digest(source, event_id, length=24)


class ChaosRedis:
    """redis-server with AOF (as production runs it) so a restart keeps idempotency records."""

    def __init__(self, port: int):
        self.port = port
        self.dir = tempfile.mkdtemp(prefix="dvci-chaos-redis-")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else "redis-server"
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                                      "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                out = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, timeout=1)
                if b"PONG" in out.stdout:
                    return
            except (subprocess.TimeoutExpired, FileNotFoundError):
                pass
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # graceful: the AOF is flushed
            self.proc.wait()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def run(n: int, concurrency: int, timeout_s: float, outage_s: float = 30.0) -> int:
    port, sandbox_port = free_port(), free_port()
    redis = ChaosRedis(free_port())
    redis.start()
    policy = Path(tempfile.mkdtemp()) / "providers.yaml"
    policy.write_text(POLICY)
    stack = DevStack(port=port, sandbox_port=sandbox_port, redis_url=redis.url, env="chaos", max_records=500_000,
                     smtp_port=free_port(), moto_port=free_port(),
                     extra_env={"DVCI_SMS_POLICY_FILE": str(policy), "DVCI_RELIABILITY_LEASE_MS": "3000",
                                **{f"DVCI_SMS_{name.upper()}_TIMEOUT_S": "0.5" for name in _SMS},
                                "DVCI_LOG_LEVEL": "ERROR"})
    print(f"chaos: starting dvci dev (broker :{port}, sandbox :{sandbox_port}, Redis :{redis.port} with AOF)",
          flush=True)
    await stack.start()
    base = f"http://127.0.0.1:{port}/"
    sandbox = f"http://127.0.0.1:{sandbox_port}"
    events: list[CloudEvent] = []
    try:
        async with aiohttp.ClientSession() as s:
            for name in _SMS:
                async with s.post(f"{sandbox}/{name}/_sandbox/faults",
                                  json={"error_rate": 0.3, "status": 503, "timeout_rate": 0.05, "hang_s": 2}) as r:
                    assert r.status == 200
            rng = random.Random(91)
            for i in range(n):
                to = rng.choice(["091", "094", "096", "097", "098", "090", "093", "088", "086", "032"]) + \
                    f"{rng.randrange(10**7):07d}"
                dossier = f"000.00.01.H29-261127-{i:05d}"
                events.append(CloudEvent(id=str(uuid.uuid4()), source="/dvc/core/chaos", type=TYPE,
                                         extensions={"dossierid": dossier},
                                         data={"to": to, "text": rng.choice(TEXTS).format(d=dossier)}))
            # ~1% malformed requests: they must end as dead letters, not vanish
            for ev in events[::97]:
                ev.data = {"text": "missing recipient"}
            queue: asyncio.Queue[CloudEvent] = asyncio.Queue()
            for ev in events:
                queue.put_nowait(ev)
            started = time.monotonic()
            sent = 0

            async def emitter() -> None:
                nonlocal sent
                while True:
                    try:  # not empty()-then-get: another emitter may take the last one in between
                        ev = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    # bounded backlog, like a real producer (the tracker runs while an event is held here)
                    while sent - settled_count[0] > 2000:
                        await asyncio.sleep(0.05)
                    async with s.post(base, data=ev.data_bytes(), headers=binary_headers(ev)) as r:
                        assert r.status == 202, r.status
                    sent += 1

            def settled() -> int:
                return sum(1 for ev in events[:sent] if not _pending(stack, ev))

            async def chaos_agent() -> None:
                while settled() < n * 0.3:
                    await asyncio.sleep(0.2)
                print(f"chaos: [{settled()}/{n} settled] stopping Redis for {outage_s:.0f}s", flush=True)
                redis.stop()
                await asyncio.sleep(outage_s)
                redis.start()
                print(f"chaos: [{settled()}/{n} settled] Redis is back", flush=True)
                while settled() < n * 0.6:
                    await asyncio.sleep(0.2)
                fp = stack.functions["send-sms"]
                print(f"chaos: [{settled()}/{n} settled] SIGKILL send-sms (pid {fp.proc.pid if fp.proc else '?'})",
                      flush=True)
                if fp.proc:
                    os.killpg(fp.proc.pid, signal.SIGKILL)

            settled_count = [0]

            async def progress() -> None:
                while sent < n:
                    await asyncio.sleep(2)
                    settled_count[0] = settled()
                    print(f"chaos: emitted {sent}/{n} ({sent / (time.monotonic() - started):.0f}/s)", flush=True)

            async def tracker() -> None:
                while sent < n:
                    settled_count[0] = settled()
                    await asyncio.sleep(0.5)

            await asyncio.gather(*(emitter() for _ in range(concurrency)), chaos_agent(), progress(), tracker())
            print(f"chaos: all {n} emitted in {time.monotonic() - started:.1f}s; waiting for outcomes", flush=True)
            assert stack.broker is not None
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                pending = sum(1 for ev in events if _pending(stack, ev))
                if pending == 0:
                    break
                print(f"chaos: {pending} event(s) still in delivery", flush=True)
                await asyncio.sleep(2)
            messages: Counter[str] = Counter()
            for name in _SMS:
                async with s.get(f"{sandbox}/{name}/_sandbox/requests", params={"log": "0"}) as r:
                    body = orjson.loads(await r.read())
                for ref in body["messages_by_reference"]:
                    messages[ref] += 1
        code = ledger(stack, events, messages, time.monotonic() - started)
        return code or await audit_check(redis.url, stack)
    finally:
        await stack.stop()
        redis.stop()


async def audit_check(redis_url: str, stack: DevStack) -> int:
    """Seal the audit trail the run produced (Object Lock S3 in moto) and verify the whole chain."""
    import redis.asyncio as aioredis

    from shared.security.seal import AuditSettings, seal, verify
    from shared.storage.redis import Keys

    state = orjson.loads(STATE_FILE.read_bytes()) if STATE_FILE.exists() else {}
    settings = AuditSettings(DVCI_ENV=stack.env, S3_ENDPOINT_URL=state.get("s3"))
    client = aioredis.Redis.from_url(redis_url)
    try:
        sealed = await seal(client, Keys(stack.env), settings)
        report = await verify(client, Keys(stack.env), settings)
    finally:
        await client.aclose()
    print(f"audit trail                        {sealed['absorbed']} absorbed, {report.segments} sealed segment(s), "
          f"{report.checked} records checked: {'chain OK' if report.ok else 'BROKEN: ' + report.problem}", flush=True)
    return 0 if report.ok else 1


def _pending(stack: DevStack, ev: CloudEvent) -> bool:
    rec = stack.broker.find(ev.id, ev.source) if stack.broker else None
    return rec is None or not rec.done()


def ledger(stack: DevStack, events: list[CloudEvent], messages: Counter[str], elapsed: float) -> int:
    assert stack.broker is not None
    outcomes: Counter[str] = Counter()
    per_event: list[int] = []
    lost, accepted_without_message, failed_with_message = [], 0, 0
    for ev in events:
        rec = stack.broker.find(ev.id, ev.source)
        count = messages.get(reference(ev.source, ev.id), 0)
        per_event.append(count)
        outcome = None
        if rec is not None and rec.deliveries:
            d = rec.deliveries[0]
            if d.outcome == "replied" and rec.replies:
                reply = stack.broker.find(rec.replies[0]["id"], rec.replies[0]["source"])
                rtype = rec.replies[0]["type"].rsplit(".", 1)[1]
                outcome = rtype if rtype == "accepted" else f"failed:{(reply.data or {}).get('reason')}" \
                    if reply else "failed:?"
            elif d.outcome == "dead-lettered":
                outcome = "dead-letter"
        if outcome is None:
            lost.append(ev.id)
            continue
        outcomes[outcome] += 1
        if outcome == "accepted" and count == 0:
            accepted_without_message += 1
        if outcome != "accepted" and count:
            failed_with_message += 1
    dup = sum(1 for c in per_event if c > 1)
    attempts = sum(len(d.attempts) for ev in events if (r := stack.broker.find(ev.id, ev.source))
                   for d in r.deliveries)
    restarts = {n: f.restarts for n, f in stack.functions.items()}
    print("\n================ chaos ledger ================")
    print(f"events in                          {len(events)}")
    for name, c in sorted(outcomes.items()):
        print(f"  outcome {name:26} {c}")
    print(f"deliveries by the broker           {attempts} ({attempts / len(events):.2f} per event)")
    print(f"messages at the sandboxes          {sum(per_event)}")
    print(f"messages per event: max            {max(per_event)}  (must be 1)")
    print(f"events with 2+ messages            {dup}  (must be 0)")
    print(f"accepted without a message         {accepted_without_message}  (must be 0)")
    print(f"not accepted, yet a message sent   {failed_with_message}  (outcome_unknown / dead letters that did send)")
    print(f"without outcome or dead letter     {len(lost)}  (must be 0)")
    print(f"function restarts                  {restarts}")
    print(f"elapsed                            {elapsed:.1f}s ({len(events) / elapsed:.0f} events/s end to end)")
    ok = dup == 0 and not lost and accepted_without_message == 0 and max(per_event) <= 1
    print("result                             " + ("OK" if ok else "INVARIANT BROKEN"))
    if lost:
        print(f"lost (first 5): {lost[:5]}")
    return 0 if ok else 1


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--events", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--timeout", type=float, default=300)
    p.add_argument("--redis-outage", type=float, default=30.0, help="seconds Redis stays down")
    args = p.parse_args()
    sys.exit(asyncio.run(run(args.events, args.concurrency, args.timeout, args.redis_outage)))


if __name__ == "__main__":
    main()
