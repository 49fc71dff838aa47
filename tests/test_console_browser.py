"""The operator console in a real browser (Playwright driving the system's Chromium, never a downloaded one),
against `dvci dev`'s stack in this process: log in, a dossier's timeline across kinds, replay a dead letter
and see it delivered, force a breaker open and see routing change, a viewer cannot act, a POST without a
CSRF token is refused. Screenshots of every page go to docs/screenshots/."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import uuid

import aiohttp
import orjson
import pytest

from tests.conftest import ROOT, TEST_ENV, free_port

pytestmark = pytest.mark.slow
SHOTS = ROOT / "docs" / "screenshots"


def _free_block(n: int = 16) -> int:
    """A port P with P..P+n-1 all free (dvci dev puts its functions on the ports after the broker's)."""
    import random
    import socket

    for _ in range(200):
        base = random.randrange(20000, 60000)
        held = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                held.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError("no block of free ports")


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
async def stack():
    pytest.importorskip("playwright", reason="pip playwright not installed (make install installs it)")
    if _chromium() is None:
        pytest.skip("no system Chromium: scripts/setup-system.sh installs the `chromium` package (apt)")
    from console.auth import hash_password
    from dvci.dev import DevStack

    accounts = {"op": {"role": "operator", "password_hash": hash_password("op-password-1")},
                "view": {"role": "viewer", "password_hash": hash_password("view-password-1")}}
    saved = os.environ.get("DVCI_CONSOLE_ACCOUNTS")
    os.environ["DVCI_CONSOLE_ACCOUNTS"] = orjson.dumps(accounts).decode()
    # the suite points provider clients at its own sandboxes: this stack's functions use the stack's sandbox
    urls = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("DVCI_") and k.endswith("_URL")}
    s = DevStack(port=_free_block(), sandbox_port=free_port(), smtp_port=free_port(), moto_port=free_port(),
                 console_port=free_port(), env=f"{TEST_ENV}con", ping_interval_s=1.0, receipt_delay_ms=200)
    try:
        await s.start()
    finally:
        os.environ.update(urls)
    try:
        yield s
    finally:
        await s.stop()
        if saved is None:
            os.environ.pop("DVCI_CONSOLE_ACCOUNTS", None)
        else:
            os.environ["DVCI_CONSOLE_ACCOUNTS"] = saved


@pytest.fixture(scope="module")
async def browser(stack):
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox", "--disable-gpu"])
        yield b
        await b.close()


async def _login(browser, stack, user: str, password: str):
    ctx = await browser.new_context(viewport={"width": 1300, "height": 900}, locale="vi-VN")
    page = await ctx.new_page()
    await page.goto(stack.console.url + "timeline")
    assert "/login" in page.url  # login required
    await page.fill("input[name=user]", user)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/timeline")
    return ctx, page


async def _emit(stack, event_type: str, data: dict, dossier: str) -> None:
    from dvci import client

    event = client.make_event(event_type, data, source="/dvc/core/test", extensions={"dossierid": dossier})
    async with aiohttp.ClientSession() as s:
        status, _ = await client.post_event(s, f"http://127.0.0.1:{stack.port}/", event)
        assert status == 202


async def _timeline(stack, dossier: str, want: set[str], timeout: float = 30.0) -> list[dict]:
    """The dossier's timeline (from Redis, as the console reads it) once it has every type in `want`."""
    import redis.asyncio as aioredis

    from shared.observability import timeline
    from shared.storage.redis import Keys

    r = aioredis.Redis.from_url(stack.redis_url)
    try:
        rows: list[dict] = []
        for _ in range(int(timeout * 10)):
            rows = await timeline.read(r, Keys(stack.env), dossier)
            if want <= {x["type"] for x in rows}:
                return rows
            await asyncio.sleep(0.1)
        return rows
    finally:
        await r.aclose()


def _sms(prefix: str, dossier: str) -> dict:
    """An SMS to a fresh number of the carrier of `prefix` (one number per message: recipient limits)."""
    to = prefix + f"{uuid.uuid4().int % 10**7:07d}"
    return {"to": to, "text": f"Ho so {dossier} da duoc tiep nhan.", "dossier_id": dossier}


async def test_console_in_a_browser(stack, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    dossier = f"000.00.01.H29-261128-{uuid.uuid4().hex[:4]}"
    await _emit(stack, "vn.gov.dvc.sms.send.requested", _sms("091", dossier), dossier)
    await _emit(stack, "vn.gov.dvc.email.send.requested", {
        "to": ["citizen@example.vn"], "template": "result_ready", "dossier_id": dossier,
        "params": {"citizen_name": "Nguyễn Văn An", "dossier_id": dossier, "pickup_place": "Bộ phận Một cửa"}},
        dossier)
    want = {"vn.gov.dvc.sms.accepted", "vn.gov.dvc.email.sent"}
    if "postal-create" in stack.functions:
        await _emit(stack, "vn.gov.dvc.postal.shipment.requested", {
            "dossier_id": dossier, "purpose": "result_delivery",
            "recipient": {"name": "Nguyễn Thị Minh Khai", "phone": "0912345678", "address_line": "Số 1 Tràng Tiền",
                          "province_code": "01", "ward_code": "00070"},
            "parcel": {"weight_g": 300, "contents": "Kết quả giải quyết thủ tục hành chính"}}, dossier)
        want.add("vn.gov.dvc.postal.shipment.created")
    if "lgsp-sync" in stack.functions:
        from shared.integrations.lgsp.demo import demo_change

        await _emit(stack, "vn.gov.dvc.dossier.status.changed", demo_change(dossier), dossier)
        want.add("vn.gov.dvc.dossier.sync.result")
    rows = await _timeline(stack, dossier, want)
    assert want <= {x["type"] for x in rows}, rows

    ctx, page = await _login(browser, stack, "op", "op-password-1")
    # -- the dossier's timeline: every kind, with its provider and outcome
    await page.fill("#dossier", dossier)
    await page.click("text=Tìm")
    await page.wait_for_selector("#timeline")
    shown = await page.locator("#timeline tr[data-kind]").evaluate_all(
        "rows => rows.map(r => r.querySelector('code').textContent)")
    assert want <= set(shown)
    sms_row = page.locator("#timeline tr", has_text="vn.gov.dvc.sms.accepted").first
    first_provider = (await sms_row.locator("td").nth(3).inner_text()).strip()
    assert first_provider in ("viettel", "vnpt", "mobifone")
    await page.screenshot(path=str(SHOTS / "timeline.png"), full_page=True)

    # -- a dead letter (an SMS request the broker gave up on while every provider was down), replayed
    import redis.asyncio as aioredis

    from shared.reliability.deadletters import DeadLetterStore
    from shared.runtime.events import CloudEvent
    from shared.storage.redis import Keys

    dead_dossier = f"000.00.01.H29-261128-{uuid.uuid4().hex[:4]}"
    problem = base64.b64encode(b'{"status":503,"detail":"no sms provider available"}').decode()
    dead = CloudEvent(id=str(uuid.uuid4()), source="/dvc/core/test", type="vn.gov.dvc.sms.send.requested",
                      extensions={"dossierid": dead_dossier, "knativeerrorcode": "503",
                                  "knativeerrordest": stack.functions["send-sms"].url, "knativeerrordata": problem},
                      data=_sms("098", dead_dossier))
    r = aioredis.Redis.from_url(stack.redis_url)
    letter = await DeadLetterStore(r, Keys(stack.env)).record(dead)
    await r.aclose()
    await page.goto(stack.console.url + "deadletters?kind=sms")
    await page.wait_for_selector(f"#letter-{letter.id}")
    await page.screenshot(path=str(SHOTS / "deadletters.png"), full_page=True)
    await page.click(f"#letter-{letter.id} a.show")
    await page.wait_for_selector("#data")
    masked = await page.inner_text("#data")
    assert dead.data["to"] not in masked and "•" in masked  # citizen data masked
    await page.screenshot(path=str(SHOTS / "deadletter.png"), full_page=True)
    await page.fill("#replay input[name=reason]", "providers back after the outage")
    await page.click("#replay button")
    await page.wait_for_selector("#flash")
    assert "replay-202" in await page.inner_text("#flash")
    rows = await _timeline(stack, dead_dossier, {"vn.gov.dvc.sms.accepted"})
    assert "vn.gov.dvc.sms.accepted" in {x["type"] for x in rows}  # the replayed event was delivered
    await page.goto(stack.console.url + f"timeline?dossier={dead_dossier}")
    await page.wait_for_selector("#timeline")
    assert "vn.gov.dvc.sms.accepted" in await page.inner_text("#timeline")

    # -- force the first SMS's provider open: the next SMS of the same carrier goes elsewhere
    await page.goto(stack.console.url + "breakers")
    row = page.locator(f"#breaker-sms-{first_provider}")
    await row.locator("input[name=reason]").fill("provider maintenance window")
    await row.locator("button.danger").click()
    await page.wait_for_selector("#flash")
    assert await page.locator(f"#breaker-sms-{first_provider}").get_attribute("data-state") == "forced-open"
    await page.screenshot(path=str(SHOTS / "breakers.png"), full_page=True)
    second = f"000.00.01.H29-261128-{uuid.uuid4().hex[:4]}"
    await _emit(stack, "vn.gov.dvc.sms.send.requested", _sms("091", second), second)
    rows = await _timeline(stack, second, {"vn.gov.dvc.sms.accepted"})
    accepted = [x for x in rows if x["type"] == "vn.gov.dvc.sms.accepted"]
    assert accepted and accepted[0]["provider"] != first_provider
    await row.locator("input[name=reason]").fill("maintenance over")
    await page.locator(f"#breaker-sms-{first_provider} button", has_text="Tự động").click()
    await page.wait_for_selector("#flash")

    # -- overview and audit (the actions above are in the chain, with the user and the reason)
    await page.goto(stack.console.url + "overview")
    await page.wait_for_selector("#kinds tr[data-kind=sms]")
    await page.screenshot(path=str(SHOTS / "overview.png"), full_page=True)
    await page.goto(stack.console.url + "audit?actor=op")
    await page.click("#verify")
    await page.wait_for_selector("#chain .ok, #chain .bad", timeout=60_000)
    assert await page.locator("#chain .ok").count() == 1, await page.inner_text("#chain")
    text = await page.inner_text("#audit")
    assert "breaker.open" in text and "dlq.replay" in text and "console:op" in text, text
    await page.screenshot(path=str(SHOTS / "audit.png"), full_page=True)
    await page.click("#lang")
    await page.wait_for_selector("text=Hash-chain verification")

    # -- a POST without its CSRF token is refused, even for an operator
    resp = await page.request.post(stack.console.url + f"breakers/sms.{first_provider}/open",
                                   form={"reason": "no token here"})
    assert resp.status == 403
    await ctx.close()

    # -- a viewer sees the pages but no action, and a POST with a valid token is still refused
    vctx, vpage = await _login(browser, stack, "view", "view-password-1")
    await vpage.goto(stack.console.url + "breakers")
    assert await vpage.locator("button.danger").count() == 0
    await vpage.goto(stack.console.url + f"deadletters/{letter.id}")
    assert await vpage.locator("#replay").count() == 0
    token = await vpage.evaluate("JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token']")
    resp = await vpage.request.post(stack.console.url + f"breakers/sms.{first_provider}/open",
                                    form={"reason": "viewer tries", "csrf": token})
    assert resp.status == 403
    resp = await vpage.request.post(stack.console.url + f"deadletters/{letter.id}/replay",
                                    form={"reason": "viewer tries", "csrf": token})
    assert resp.status == 403
    await vctx.close()
    login_page = await browser.new_page()
    await login_page.goto(stack.console.url + "login")
    await login_page.screenshot(path=str(SHOTS / "login.png"))
    await login_page.close()
