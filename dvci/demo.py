"""The demo `make run` / `make demo` play: an SMS in and its `accepted` out; a malformed event ending
as a dead letter; the result of a dossier shipped by post, created and delivered; a decision signed with
the agency's seal (B-T) and its verification report; a dossier's status synced to DVCQG and the LGSP."""

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
        from shared.storage.redis import from_url

        redis = from_url(client.redis_url())
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
        ok = await _postal(session, base) and ok
        ok = await _signing(session, base) and ok
        from shared.integrations.lgsp.demo import lgsp_story  # [demo 5] a dossier synced to DVCQG and LGSP

        ok = await lgsp_story(session, base) and ok
    print("\ndemo: " + ("OK" if ok else "FAILED"), flush=True)
    return 0 if ok else 1


DOSSIER = "000.00.01.H29-261127-0001"


async def _postal(session: aiohttp.ClientSession, base: str) -> bool:
    """[demo 3] the result of a dossier sent home by VietnamPost: created (with its label), then delivered."""
    request = client.make_event("vn.gov.dvc.postal.shipment.requested", {
        "dossier_id": DOSSIER, "purpose": "result_delivery",
        "recipient": {"name": "Nguyễn Thị Minh Khai", "phone": "0912345678", "address_line": "Số 1 Tràng Tiền",
                      "province_code": "01", "ward_code": "00070"},
        "parcel": {"weight_g": 300, "contents": "Kết quả giải quyết thủ tục hành chính"}},
        source="/dvc/core/demo", extensions={"dossierid": DOSSIER})
    print(f"\n[demo 3] -> vn.gov.dvc.postal.shipment.requested id={request.id}", flush=True)
    await client.post_event(session, base, request)
    chain = await client.follow(session, base, request, 30, ("vn.gov.dvc.postal.shipment.created",
                                                             "vn.gov.dvc.postal.shipment.failed"))
    created = [e for e in chain if e["type"] == "vn.gov.dvc.postal.shipment.created"]
    if not created:
        print(f"[demo 3] FAILED: no shipment.created; saw {[(e['type'], e.get('data')) for e in chain[1:]]}",
              flush=True)
        return False
    data = created[0]["data"]
    _show(f"[demo 3] <- vn.gov.dvc.postal.shipment.created id={created[0]['id']}", data)
    delivered = await client.emitted(session, base, "vn.gov.dvc.postal.delivered",
                                     {"tracking_number": data["tracking_number"]}, 60)
    if delivered is None:
        print("[demo 3] FAILED: no vn.gov.dvc.postal.delivered within 60 s", flush=True)
        return False
    _show(f"[demo 3] <- vn.gov.dvc.postal.delivered id={delivered['id']}", delivered["data"])
    return True


async def _signing(session: aiohttp.ClientSession, base: str) -> bool:
    """[demo 4] a sample decision signed with the agency seal (PKCS#11, B-T) and verified."""
    import os

    from shared.integrations.signature.devstack import demo

    return await demo(session, base, os.environ.get("S3_ENDPOINT_URL") or client.dev_state().get("s3"))
