"""The operator console: a server-rendered Starlette application (Jinja2 templates, htmx shipped in the package).

    uvicorn console.app:app            # REDIS_URL, DVCI_ENV, DVCI_CONSOLE_* (the Knative Service)
    dvci console --port 8070           # locally, against `dvci dev`'s Redis

Pages read the same Redis state as `dvci` (see console/data.py for the indexes that keep them bounded);
actions (replay, purge, force a breaker, reveal citizen data) need the operator role, a CSRF token and a
reason, and are appended to the audit chain (shared/security/audit.py) with the user.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from console import auth, charts, data
from console.i18n import LOCALES, translate
from console.settings import ConsoleSettings
from shared.runtime.times import to_rfc3339
from shared.storage.redis import Keys

log = logging.getLogger("dvci.console")
HERE = Path(__file__).resolve().parent
LANG_COOKIE = "dvci_lang"


class Forbidden(Exception):
    pass


class Console:
    def __init__(self, redis: Any, keys: Keys, settings: ConsoleSettings):
        self.redis = redis
        self.keys = keys
        self.settings = settings
        self.sessions = auth.Sessions(redis, keys, settings)
        self.oidc = auth.Oidc(settings, redis, keys) if settings.oidc_enabled else None
        self.dlq = data.DeadLetterIndex(redis, keys)
        self.discovery = data.Discovery(redis, keys)
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.filters["pretty"] = lambda v: orjson.dumps(
            v, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS, default=str).decode()  # autoescaped
        self.audit_settings = data.audit_settings(keys, settings.audit_s3_endpoint_url)
        self.warming: asyncio.Task[Any] | None = None  # folding what arrived while down into the indexes

    # -- helpers -------------------------------------------------------------------------------
    def locale(self, request: Request) -> str:
        lang = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or self.settings.default_locale
        return lang if lang in LOCALES else "vi"

    def render(self, request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> Response:
        lang = self.locale(request)
        session: auth.Session | None = request.state.session if hasattr(request.state, "session") else None
        full = {"request": request, "t": lambda k: translate(k, lang), "lang": lang, "session": session,
                "csrf": session.csrf if session else "", "path": request.url.path, **ctx}
        resp = self.templates.TemplateResponse(request, name, full, status_code=status)
        if request.query_params.get("lang") in LOCALES:
            resp.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax")
        return resp

    async def audit(self, session: auth.Session, action: str, kind: str, subject: str, reason: str,
                    outcome: str = "ok", **detail: Any) -> None:
        from shared.security.audit import Audit

        await Audit(self.redis, self.keys).record(actor=f"console:{session.user}", action=action, kind=kind,
                                                  subject=subject, outcome=outcome,
                                                  detail={"reason": reason, "role": session.role, "via": session.via,
                                                          **detail})

    def broker_url(self) -> str:
        if self.settings.broker_url:
            return self.settings.broker_url
        if os.environ.get("K_SINK"):  # the SinkBinding (infra/knative/base/console.yaml)
            return os.environ["K_SINK"]
        from dvci import client

        return client.broker_url()

    async def replay(self, letter: data.DeadLetter, by: str) -> int:
        import aiohttp

        from dvci import client
        from shared.runtime.events import CloudEvent

        event = CloudEvent.from_dict(letter.event)
        async with aiohttp.ClientSession() as session:
            try:
                status, _ = await client.post_event(session, self.broker_url(), event)
            except aiohttp.ClientError:
                status = 599
        await self.dlq.store.mark_replayed(letter, by, status)
        return status


Handler = Callable[[Console, Request], Awaitable[Response]]


def _wants_fragment(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def page(fn: Handler | None = None, *, operator: bool = False) -> Any:
    """A route that needs a session; POSTs also a valid CSRF token; `operator` actions the operator role."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            c: Console = request.app.state.console
            started = time.perf_counter()
            session = await c.sessions.get(request.cookies.get(auth.COOKIE))
            if session is None:
                if request.method != "GET" or _wants_fragment(request):
                    return JSONResponse({"title": "login required", "status": 401}, status_code=401)
                return RedirectResponse("/login?" + urlencode({"next": str(request.url.path)}), status_code=303)
            request.state.session = session
            if request.method == "POST":
                form = await request.form()
                request.state.form = form
                given = request.headers.get("x-csrf-token") or form.get("csrf")
                if not auth.csrf_ok(session.csrf, str(given) if given else None):
                    return JSONResponse({"title": "CSRF token missing or wrong", "status": 403}, status_code=403)
                if operator and not session.operator:
                    return JSONResponse({"title": translate("forbidden", "en"), "status": 403}, status_code=403)
            try:
                resp = await handler(c, request)
            except Forbidden as exc:  # a missing reason
                return JSONResponse({"title": str(exc), "status": 400}, status_code=400)
            resp.headers["server-timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
            resp.headers["cache-control"] = "no-store"
            return resp

        endpoint.__name__ = handler.__name__
        return endpoint

    return wrap(fn) if fn is not None else wrap


def _reason(request: Request) -> str:
    reason = str(request.state.form.get("reason", "")).strip()
    if len(reason) < 3:
        raise Forbidden("a reason is required (at least 3 characters)")
    return reason[:500]


# -- login -------------------------------------------------------------------------------------------
async def login_form(request: Request) -> Response:
    c: Console = request.app.state.console
    token = secrets.token_urlsafe(24)
    resp = c.render(request, "login.html", {"pre": token, "error": request.query_params.get("error"),
                                            "next": request.query_params.get("next", "/"),
                                            "oidc": c.oidc is not None,
                                            "local": bool(c.settings.accounts)})
    resp.set_cookie(auth.PRE_COOKIE, token, max_age=600, httponly=True, samesite="strict",
                    secure=c.settings.cookie_secure)
    return resp


async def login(request: Request) -> Response:
    c: Console = request.app.state.console
    form = await request.form()
    if not auth.csrf_ok(request.cookies.get(auth.PRE_COOKIE), str(form.get("csrf") or "")):
        return JSONResponse({"title": "CSRF token missing or wrong", "status": 403}, status_code=403)
    user = str(form.get("user", ""))[:100]
    role = await asyncio.to_thread(auth.check_account, c.settings, user, str(form.get("password", "")))
    if role is None:
        log.warning("console login refused", extra={"user_known": user in c.settings.accounts})
        return RedirectResponse("/login?error=1", status_code=303)
    return await _start_session(c, user, role, "local", str(form.get("next") or "/"))


async def _start_session(c: Console, user: str, role: str, via: str, next_path: str) -> Response:
    session = await c.sessions.create(user, role, via)
    from shared.security.audit import Audit

    await Audit(c.redis, c.keys).record(actor=f"console:{user}", action="console.login", kind="console",
                                        subject=user, detail={"role": role, "via": via})
    target = next_path if next_path.startswith("/") and not next_path.startswith("//") else "/"
    resp = RedirectResponse(target, status_code=303)
    resp.set_cookie(auth.COOKIE, session.token, httponly=True, samesite="lax", secure=c.settings.cookie_secure,
                    max_age=c.settings.session_max_s)
    resp.delete_cookie(auth.PRE_COOKIE)
    return resp


async def oidc_start(request: Request) -> Response:
    c: Console = request.app.state.console
    if c.oidc is None:
        return Response(status_code=404)
    return RedirectResponse(await c.oidc.authorize_url(), status_code=303)


async def oidc_callback(request: Request) -> Response:
    c: Console = request.app.state.console
    if c.oidc is None:
        return Response(status_code=404)
    try:
        user, role = await c.oidc.callback(request.query_params.get("code", ""), request.query_params.get("state", ""))
    except auth.OidcError as exc:
        log.warning("console SSO login refused", extra={"why": str(exc)})
        return RedirectResponse("/login?error=sso", status_code=303)
    return await _start_session(c, user, role, "oidc", "/")


@page
async def logout(c: Console, request: Request) -> Response:
    await c.sessions.delete(request.state.session.token)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(auth.COOKIE)
    return resp


# -- pages -------------------------------------------------------------------------------------------
@page
async def home(c: Console, request: Request) -> Response:
    return RedirectResponse("/timeline", status_code=303)


@page
async def timeline_page(c: Console, request: Request) -> Response:
    from shared.observability import timeline

    dossier = request.query_params.get("dossier", "").strip()[:200]
    rows: list[dict[str, Any]] = []
    letters: list[dict[str, Any]] = []
    if dossier:
        rows = await timeline.read(c.redis, c.keys, dossier)
        for r in rows:
            r["at"] = to_rfc3339(r["at_ms"] / 1000)
            r["failed"] = timeline.failed(r["outcome"] or "")
        _total, found = await c.dlq.query(dossier=dossier, limit=100)
        letters = [data.letter_view(x) for x in found]
    return c.render(request, "timeline.html", {"dossier": dossier, "rows": rows, "letters": letters})


@page
async def overview_page(c: Console, request: Request) -> Response:
    kinds = await data.stats_kinds(c.redis, c.keys)
    ov, brk, boxes, dl_total, dl_kinds = await asyncio.gather(
        data.overview(c.redis, c.keys, kinds), data.breakers(c.redis, c.keys, c.discovery),
        data.outboxes(c.redis, c.keys, c.discovery), c.dlq.count(), c.dlq.count_by_kind())
    minutes = ov["minutes"]
    labels = [time.strftime("%H:%M", time.gmtime(m * 60 + 7 * 3600)) for m in minutes]
    chart = charts.line_chart({k: v["series"] for k, v in ov["kinds"].items()}, labels,
                              title=translate("overview.chart", c.locale(request)))
    per_kind_breakers: dict[str, list[dict[str, Any]]] = {}
    for b in brk:
        per_kind_breakers.setdefault(b["kind"], []).append(b)
    return c.render(request, "overview.html", {"ov": ov["kinds"], "chart": chart, "breakers": per_kind_breakers,
                                               "outboxes": boxes, "dl_total": dl_total, "dl_kinds": dl_kinds})


def _filters(request: Request) -> dict[str, str | None]:
    q = request.query_params if request.method == "GET" else request.state.form
    return {k: (str(q.get(k)) or None) if q.get(k) else None for k in ("type", "kind", "code", "since")}


@page
async def deadletters_page(c: Console, request: Request) -> Response:
    f = _filters(request)
    pg = max(0, int(request.query_params.get("page", "0") or 0))
    total, letters = await c.dlq.query(type_=f["type"], kind=f["kind"], code=f["code"], since=f["since"],
                                       offset=pg * 50, limit=50)
    facets = await c.dlq.facet_values()
    return c.render(request, "deadletters.html", {
        "filters": f, "total": total, "letters": [data.letter_view(x) for x in letters], "facets": facets,
        "page": pg, "pages": (total + 49) // 50, "query": urlencode({k: v for k, v in f.items() if v}),
        "flash": request.query_params.get("done")})


@page
async def deadletter_page(c: Console, request: Request) -> Response:
    letter = await c.dlq.store.get(request.path_params["id"])
    if letter is None:
        return c.render(request, "notfound.html", {}, status=404)
    tpl = "deadletter_detail.html" if _wants_fragment(request) else "deadletter.html"
    return c.render(request, tpl, {"x": data.letter_view(letter), "revealed": False})


@page(operator=True)
async def deadletter_reveal(c: Console, request: Request) -> Response:
    letter = await c.dlq.store.get(request.path_params["id"])
    if letter is None:
        return c.render(request, "notfound.html", {}, status=404)
    reason = _reason(request)
    await c.audit(request.state.session, "console.reveal", "dlq", letter.id, reason)
    tpl = "deadletter_detail.html" if _wants_fragment(request) else "deadletter.html"
    return c.render(request, tpl, {"x": data.letter_view(letter, reveal=True), "revealed": True})


@page(operator=True)
async def deadletter_replay(c: Console, request: Request) -> Response:
    letter = await c.dlq.store.get(request.path_params["id"])
    if letter is None:
        return c.render(request, "notfound.html", {}, status=404)
    reason = _reason(request)
    session = request.state.session
    status = await c.replay(letter, f"console:{session.user}")
    await c.audit(session, "dlq.replay", "dlq", letter.id, reason, outcome="ok" if status < 300 else "failed",
                  status=status, type=letter.type)
    return RedirectResponse(f"/deadletters/{letter.id}?done=replay-{status}", status_code=303)


@page(operator=True)
async def deadletters_replay(c: Console, request: Request) -> Response:
    f = _filters(request)
    reason = _reason(request)
    session = request.state.session
    ids = await c.dlq.ids(type_=f["type"], kind=f["kind"], code=f["code"], since=f["since"],
                          limit=c.settings.replay_max)
    ok = failed = 0
    for lid in ids:
        letter = await c.dlq.store.get(lid)
        if letter is None:
            continue
        status = await c.replay(letter, f"console:{session.user}")
        ok, failed = (ok + 1, failed) if status < 300 else (ok, failed + 1)
    await c.audit(session, "dlq.replay", "dlq", "filter:" + urlencode({k: v for k, v in f.items() if v}), reason,
                  outcome="ok" if not failed else "partial", replayed=ok, failed=failed)
    q = urlencode({**{k: v for k, v in f.items() if v}, "done": f"replayed-{ok}-failed-{failed}"})
    return RedirectResponse(f"/deadletters?{q}", status_code=303)


@page(operator=True)
async def deadletter_purge(c: Console, request: Request) -> Response:
    letter = await c.dlq.store.get(request.path_params["id"])
    if letter is None:
        return c.render(request, "notfound.html", {}, status=404)
    reason = _reason(request)
    session = request.state.session
    await c.dlq.purge(letter, f"console:{session.user}")
    await c.audit(session, "dlq.purge", "dlq", letter.id, reason, type=letter.type)
    return RedirectResponse("/deadletters?done=purged", status_code=303)


@page
async def breakers_page(c: Console, request: Request) -> Response:
    rows, spend = await asyncio.gather(data.breakers(c.redis, c.keys, c.discovery),
                                       data.sms_spend(c.redis, c.keys))
    chart = charts.bar_chart({d: spend["per_day"].get(d, {}) for d in spend["days"]},
                             title=translate("breaker.spend", c.locale(request)))
    return c.render(request, "breakers.html", {"rows": rows, "spend": spend["rows"], "chart": chart,
                                               "flash": request.query_params.get("done")})


@page(operator=True)
async def breaker_force(c: Console, request: Request) -> Response:
    from shared.reliability.breakers import BreakerAdmin

    name, verb = request.path_params["name"], request.path_params["verb"]
    if verb not in ("open", "close", "auto") or "." not in name:
        return Response(status_code=404)
    reason = _reason(request)
    session = request.state.session
    await BreakerAdmin(c.redis, c.keys).force(name, verb, f"console:{session.user}")
    await c.audit(session, f"breaker.{verb}", "breaker", name, reason)
    await c.discovery.get(force=True)
    return RedirectResponse(f"/breakers?done={verb}-{name}", status_code=303)


@page
async def audit_page(c: Console, request: Request) -> Response:
    q = request.query_params
    found = await data.audit_search(c.redis, c.keys, dossier=q.get("dossier", "").strip(),
                                    actor=q.get("actor", "").strip(), action=q.get("action", "").strip(),
                                    since=q.get("since", "24h"), archive=c.audit_settings)
    raw = await c.redis.get(c.keys.key("console", "chain-verify"))
    verified = orjson.loads(raw) if raw else None
    return c.render(request, "audit.html", {"found": found, "q": q, "verified": verified})


@page
async def audit_verify(c: Console, request: Request) -> Response:
    """Verify the chain (viewers may: it changes nothing); the result is kept for the audit page."""
    result = await data.verify_chain(c.redis, c.keys, c.audit_settings)
    result["by"] = request.state.session.user
    await c.redis.set(c.keys.key("console", "chain-verify"), orjson.dumps(result))
    return RedirectResponse("/audit", status_code=303)


async def liveness(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readiness(request: Request) -> Response:
    try:
        await request.app.state.console.redis.ping()
    except Exception as exc:
        return JSONResponse({"status": "unready", "reason": type(exc).__name__}, status_code=503)
    return JSONResponse({"status": "ready"})


def create_app(redis_url: str | None = None, env: str | None = None,
               settings: ConsoleSettings | None = None) -> Starlette:

    from shared.runtime.settings import runtime_settings
    from shared.storage.redis import from_url, resolve_url

    settings = settings or ConsoleSettings()
    redis = from_url(redis_url or resolve_url())
    console = Console(redis, Keys(env or runtime_settings().env), settings)

    async def warm() -> None:  # fold what arrived while the console was down into its indexes
        try:
            await console.dlq.catch_up(limit=1_000_000)
            await data.sms_spend(redis, console.keys, max_entries=10_000_000)
            await console.discovery.get()
        except Exception:
            log.warning("console warm-up failed", exc_info=True)

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        task = asyncio.get_running_loop().create_task(warm())
        console.warming = task
        yield
        task.cancel()
        await redis.aclose()

    routes = [
        Route("/login", login_form, methods=["GET"]), Route("/login", login, methods=["POST"]),
        Route("/login/oidc", oidc_start), Route("/auth/callback", oidc_callback),
        Route("/logout", logout, methods=["POST"]),
        Route("/", home), Route("/timeline", timeline_page), Route("/overview", overview_page),
        Route("/deadletters", deadletters_page),
        Route("/deadletters/replay", deadletters_replay, methods=["POST"]),
        Route("/deadletters/{id}", deadletter_page),
        Route("/deadletters/{id}/replay", deadletter_replay, methods=["POST"]),
        Route("/deadletters/{id}/purge", deadletter_purge, methods=["POST"]),
        Route("/deadletters/{id}/reveal", deadletter_reveal, methods=["POST"]),
        Route("/breakers", breakers_page),
        Route("/breakers/{name}/{verb}", breaker_force, methods=["POST"]),
        Route("/audit", audit_page), Route("/audit/verify", audit_verify, methods=["POST"]),
        Route("/health/liveness", liveness), Route("/health/readiness", readiness),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.console = console
    return app


def __getattr__(name: str) -> Any:  # `uvicorn console.app:app` builds the app from the environment
    if name == "app":
        return create_app()
    raise AttributeError(name)
