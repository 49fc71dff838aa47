"""The operator console without a browser: accounts and hashes, sessions, CSRF, roles, OpenID Connect against a
local stub, the runtime's timeline hook, the dead-letter indexes, and a runbook for every alert."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest
import yaml

from tests.conftest import ROOT, TEST_ENV, free_port


def _settings(**kw):
    from console.auth import hash_password
    from console.settings import ConsoleSettings

    accounts = {"op": {"role": "operator", "password_hash": hash_password("op-password-1")},
                "view": {"role": "viewer", "password_hash": hash_password("view-password-1")}}
    return ConsoleSettings(accounts=accounts, broker_url="http://127.0.0.1:1/", **kw)


_SETTINGS = None


@pytest.fixture
async def console(redis):
    global _SETTINGS
    from console.app import create_app
    from shared.storage.redis import resolve_url

    _SETTINGS = _SETTINGS or _settings()
    app = create_app(redis_url=resolve_url(), env=TEST_ENV, settings=_SETTINGS)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://console") as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


async def _login(client, user: str, password: str) -> str:
    r = await client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', r.text)[1]
    r = await client.post("/login", data={"user": user, "password": password, "csrf": token, "next": "/breakers"})
    assert r.status_code == 303
    if r.headers["location"] != "/breakers":
        return ""
    page = await client.get("/breakers")
    return re.search(r'"X-CSRF-Token": "([^"]+)"', page.text)[1]


def test_hash_password_from_stdin():
    from console.auth import verify_password

    out = subprocess.run([sys.executable, "-c", "import sys; from dvci.cli import main; sys.exit(main())",
                          "console", "hash-password"], input="a long passphrase\n", capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout.strip()
    assert out.startswith("scrypt$") and "a long passphrase" not in out
    assert verify_password("a long passphrase", out) and not verify_password("a long passphras", out)


async def test_login_required_and_wrong_password(console):
    r = await console.get("/overview")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert await _login(console, "op", "not-the-password") == ""
    assert await _login(console, "nobody", "op-password-1") == ""
    r = await console.post("/login", data={"user": "op", "password": "op-password-1", "csrf": "forged"})
    assert r.status_code == 403  # the login form has its CSRF token too


async def test_csrf_and_roles(console, redis):
    from shared.storage.redis import Keys

    token = await _login(console, "op", "op-password-1")
    assert token
    r = await console.post("/breakers/sms.viettel/open", data={"reason": "no token"})
    assert r.status_code == 403
    r = await console.post("/breakers/sms.viettel/open", data={"reason": "ok", "csrf": "wrong"})
    assert r.status_code == 403
    r = await console.post("/breakers/sms.viettel/open", data={"reason": "", "csrf": token})
    assert r.status_code == 400  # a reason is required
    assert await redis.hget(Keys(TEST_ENV).key("sms", "breaker", "viettel"), "forced") is None
    r = await console.post("/breakers/sms.viettel/open", data={"reason": "maintenance", "csrf": token})
    assert r.status_code == 303
    assert await redis.hget(Keys(TEST_ENV).key("sms", "breaker", "viettel"), "forced") == b"open"
    await console.post("/logout", data={"csrf": token})
    console.cookies.clear()

    vtoken = await _login(console, "view", "view-password-1")
    page = await console.get("/breakers")
    assert page.status_code == 200 and "/breakers/sms.viettel/close" not in page.text  # no action buttons
    r = await console.post("/breakers/sms.viettel/close", data={"reason": "viewer", "csrf": vtoken})
    assert r.status_code == 403
    assert await redis.hget(Keys(TEST_ENV).key("sms", "breaker", "viettel"), "forced") == b"open"
    audit = await console.get("/audit?actor=op&since=1h")
    assert "breaker.open" in audit.text and "maintenance" in audit.text


async def test_sessions_expire(redis):
    from console.auth import Sessions
    from shared.storage.redis import Keys

    sessions = Sessions(redis, Keys(TEST_ENV), _settings(session_ttl_s=1, session_max_s=3600))
    s = await sessions.create("op", "operator", "local")
    assert (await sessions.get(s.token)).user == "op"
    assert await redis.ttl(sessions._key(s.token)) <= 1
    time.sleep(1.2)  # noqa: ASYNC251 - Redis expiry is what is tested
    assert await sessions.get(s.token) is None
    short = Sessions(redis, Keys(TEST_ENV), _settings(session_ttl_s=60, session_max_s=0))
    s = await short.create("op", "operator", "local")
    assert await short.get(s.token) is None  # past its absolute lifetime


async def test_dead_letter_masking_reveal_and_indexes(console, redis):
    from console.data import DeadLetterIndex
    from shared.reliability.deadletters import DeadLetterStore
    from shared.runtime.events import CloudEvent
    from shared.storage.redis import Keys

    keys = Keys(TEST_ENV)
    store = DeadLetterStore(redis, keys)
    letters = []
    for i in range(6):
        ev = CloudEvent(id=str(uuid.uuid4()), source="/dvc/core", type="vn.gov.dvc.sms.send.requested" if i % 2
                        else "vn.gov.dvc.email.send.requested",
                        extensions={"knativeerrorcode": "503" if i < 4 else "400", "dossierid": f"D-{i % 3}"},
                        data={"to": "0912345678", "text": "Ho so cua Nguyen Van An"})
        letters.append(await store.record(ev))
    index = DeadLetterIndex(redis, keys)
    total, _ = await index.query()
    assert total == 6
    assert (await index.query(kind="sms"))[0] == 3
    assert (await index.query(kind="sms", code="503"))[0] == 2
    assert (await index.query(dossier="D-0"))[0] == 2
    await index.purge(letters[1], "test")
    assert (await index.query(kind="sms"))[0] == 2

    token = await _login(console, "op", "op-password-1")
    page = await console.get(f"/deadletters/{letters[0].id}")
    assert "0912345678" not in page.text and "Nguyen Van An" not in page.text
    r = await console.post(f"/deadletters/{letters[0].id}/reveal", data={"reason": "citizen called", "csrf": token})
    assert r.status_code == 200 and "0912345678" in r.text
    listing = await console.get("/deadletters?kind=sms&code=503")
    assert re.search(r'id="total">1<', listing.text)  # i=3 (i=1 purged, i=5 is a 400)
    audit = await console.get("/audit?action=console.reveal&since=1h")
    assert "citizen called" in audit.text


async def test_timeline_hook_records_a_dossier(send_sms, redis):
    from shared.observability import timeline
    from shared.storage.redis import Keys

    dossier = f"000.00.01.H29-261128-{uuid.uuid4().int % 10000:04d}"
    headers = {"ce-specversion": "1.0", "ce-id": str(uuid.uuid4()), "ce-source": "/dvc/core",
               "ce-type": "vn.gov.dvc.sms.send.requested", "ce-dossierid": dossier,
               "content-type": "application/json"}
    r = await send_sms.post("/", headers=headers, content=orjson.dumps(
        {"to": "0912345678", "text": f"Ho so {dossier} da duoc tiep nhan."}))
    assert r.status_code == 200
    await timeline.drain()
    rows = await timeline.read(redis, Keys(TEST_ENV), dossier)
    assert [(x["type"], x["provider"]) for x in rows] == [("vn.gov.dvc.sms.accepted", "viettel")]
    keys = [k.decode() async for k in redis.scan_iter(match=f"dvci:{TEST_ENV}:{{timeline}}:*")]
    assert keys and not any(dossier in k for k in keys)  # keyed hash, not the id


# -- OpenID Connect against a local stub ---------------------------------------------------------------
def _jwt(claims: dict) -> str:
    def b64(obj: dict) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(obj)).rstrip(b"=").decode()

    return f"{b64({'alg': 'RS256', 'typ': 'JWT'})}.{b64(claims)}.c2ln"


@pytest.fixture
async def oidc_stub():
    from aiohttp import web

    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    codes: dict[str, dict] = {}
    token_requests: list[dict] = []

    async def discovery(request):
        return web.json_response({"issuer": issuer, "authorization_endpoint": issuer + "/authorize",
                                  "token_endpoint": issuer + "/token"})

    async def token(request):
        form = dict(await request.post())
        token_requests.append(form)
        claims = codes.get(form.get("code", ""))
        if claims is None or form.get("client_secret") != "stub-secret":
            return web.json_response({"error": "invalid_grant"}, status=400)
        return web.json_response({"access_token": "at", "token_type": "Bearer", "id_token": _jwt(claims)})

    app = web.Application()
    app.router.add_get("/.well-known/openid-configuration", discovery)
    app.router.add_post("/token", token)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield issuer, codes, token_requests
    await runner.cleanup()


async def test_oidc_login(redis, oidc_stub):
    from console.app import create_app
    from shared.storage.redis import resolve_url

    issuer, codes, token_requests = oidc_stub
    settings = _settings(oidc_issuer=issuer, oidc_client_id="dvci-console", oidc_client_secret="stub-secret",
                         oidc_redirect_uri="http://console/auth/callback")
    app = create_app(redis_url=resolve_url(), env=TEST_ENV, settings=settings)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://console") as client:
        assert 'href="/login/oidc"' in (await client.get("/login")).text
        r = await client.get("/login/oidc")
        assert r.status_code == 303
        url = urlsplit(r.headers["location"])
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        assert url.path == "/authorize" and q["client_id"] == "dvci-console" and q["response_type"] == "code"
        base = {"iss": issuer, "aud": "dvci-console", "exp": time.time() + 300, "sub": "u-1",
                "preferred_username": "tran.operator", "groups": ["dvci-operator"]}
        codes["good"] = {**base, "nonce": q["nonce"]}
        codes["replayed-nonce"] = {**base, "nonce": "another"}
        # the IdP redirects back with the code and the state
        bad = await client.get("/auth/callback", params={"code": "good", "state": "forged"})
        assert bad.headers["location"].startswith("/login?error")
        r = await client.get("/auth/callback", params={"code": "good", "state": q["state"]})
        assert r.status_code == 303 and r.headers["location"] == "/"
        assert token_requests[-1]["redirect_uri"] == "http://console/auth/callback"
        page = await client.get("/breakers")
        assert page.status_code == 200 and 'data-role="operator"' in page.text and "tran.operator" in page.text
        again = await client.get("/auth/callback", params={"code": "good", "state": q["state"]})
        assert again.headers["location"].startswith("/login?error")  # a state is used once
        client.cookies.clear()
        r = await client.get("/login/oidc")
        q2 = {k: v[0] for k, v in parse_qs(urlsplit(r.headers["location"]).query).items()}
        r = await client.get("/auth/callback", params={"code": "replayed-nonce", "state": q2["state"]})
        assert r.headers["location"].startswith("/login?error")  # nonce mismatch


# -- runbooks --------------------------------------------------------------------------------------------
def _anchors(markdown: str) -> dict[str, str]:
    """GitHub-style anchors of the headings -> the section's text."""
    out: dict[str, str] = {}
    current = None
    for line in markdown.splitlines():
        m = re.match(r"^#{2,4}\s+(.*)$", line)
        if m:
            current = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            out[current] = ""
        elif current:
            out[current] += line + "\n"
    return out


def test_every_alert_has_a_runbook():
    rules = yaml.safe_load((ROOT / "infra/observability/alerts.yaml").read_text())
    sections = _anchors((ROOT / "docs/operations.md").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    assert alerts
    for rule in alerts:
        url = rule.get("annotations", {}).get("runbook_url", "")
        assert url.startswith("docs/operations.md#"), f"{rule['alert']}: no runbook_url annotation"
        anchor = url.split("#", 1)[1]
        assert anchor in sections, f"{rule['alert']}: docs/operations.md has no section #{anchor}"
        body = sections[anchor]
        assert "**Means:**" in body and "**Look:**" in body and "**Do:**" in body, rule["alert"]
    for topic in ("redis-loss-and-restore", "provider-credentials-expiring", "a-full-dead-letter-queue"):
        assert topic in sections
