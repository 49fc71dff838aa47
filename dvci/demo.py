"""The demo `make run` / `make demo` play: an SMS in and its `accepted` out; a malformed event ending
as a dead letter."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import orjson

from dvci import client
from shared.reliability.deadletters import DeadLetterStore
from shared.storage.redis import Keys


def _show(title: str, obj: object) -> None:
    print(title)
    print("   " + orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode().replace("\n", "\n   "), flush=True)


async def run_demo(base: str) -> int:
    """Returns 0 when both stories end as they should."""
    ok = True
    async with aiohttp.ClientSession() as session:
        sms = client.make_event("vn.gov.dvc.sms.send.requested",
                                {"to": "0912 345 678", "text": "Ho so 000.00.01.H29-261127-0001 da duoc tiep nhan.",
                                 "dossier_id": "000.00.01.H29-261127-0001"},
                                source="/dvc/core/demo", extensions={"dossierid": "000.00.01.H29-261127-0001"})
        print(f"\n[demo 1] -> vn.gov.dvc.sms.send.requested id={sms.id}", flush=True)
        await client.post_event(session, base, sms)
        chain = await client.follow(session, base, sms, 20, ("vn.gov.dvc.sms.accepted",))
        accepted = [e for e in chain if e["type"] == "vn.gov.dvc.sms.accepted"]
        if accepted:
            _show(f"[demo 1] <- vn.gov.dvc.sms.accepted id={accepted[0]['id']}", accepted[0]["data"])
            receipts = await client.receipts_for(session, base, {accepted[0]["data"]["provider_message_id"]}, 20)
            if receipts:
                _show(f"[demo 1] <- vn.gov.dvc.sms.delivery.updated id={receipts[0]['id']}", receipts[0]["data"])
            else:
                ok = False
                print("[demo 1] FAILED: no delivery receipt", flush=True)
        else:
            ok = False
            print(f"[demo 1] FAILED: no accepted reply; saw {[e['type'] for e in chain]}", flush=True)

        bad = client.make_event("vn.gov.dvc.sms.send.requested", {"text": "no recipient"},
                                source="/dvc/core/demo", event_id=f"demo-bad-{uuid.uuid4().hex[:8]}")
        print(f"\n[demo 2] -> malformed vn.gov.dvc.sms.send.requested (no 'to') id={bad.id}", flush=True)
        await client.post_event(session, base, bad)
        chain = await client.follow(session, base, bad, 20)
        outcomes = [d["outcome"] for d in chain[0]["deliveries"]] if chain else []
        import redis.asyncio as aioredis

        redis = aioredis.Redis.from_url(client.redis_url())
        store = DeadLetterStore(redis, Keys(client.env_name()))
        letter = None
        for _ in range(50):
            letter = await store.get(store.letter_id(client.make_event(bad.type, None, bad.source, bad.id)))
            if letter:
                break
            await asyncio.sleep(0.1)
        await redis.aclose()
        if letter is not None and "dead-lettered" in outcomes:
            _show(f"[demo 2] dead letter {letter.id} (dvci dlq show {letter.id})", letter.summary())
        else:
            ok = False
            print(f"[demo 2] FAILED: delivery outcomes {outcomes}, dead letter {letter}", flush=True)
    print("\ndemo: " + ("OK" if ok else "FAILED"), flush=True)
    return 0 if ok else 1
