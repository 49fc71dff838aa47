"""`dvci dev`: every function as its own process, the sandbox, and the local broker, wired by the
manifests of infra/knative/. Function processes that die are restarted (as Kubernetes would)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from dvci import manifests as mf
from dvci.broker import Broker, Route
from dvci.client import STATE_FILE
from dvci.spool import DeadLetterSpool
from sandbox.server import RunningSandbox, start_sandbox
from shared.runtime.errors import InvalidEvent
from shared.runtime.problem import PROBLEM_JSON
from shared.storage.redis import embedded_url

log = logging.getLogger("dvci.dev")
ROOT = Path(__file__).resolve().parent.parent
SANDBOX_OFFSET = 50  # the sandbox's port from the broker's when not given (8080 -> 8130; SMTP 8155)


def provider_env(sandbox: str) -> dict[str, str]:
    """Environment pointing every provider client at the local sandbox (from every kind's registry)."""
    from shared.integrations.registry import all_specs, load

    env = {var: sandbox + path for spec in all_specs() for var, path in spec.url_env.items()}
    for spec in all_specs():  # every webhook: its simulator's published secret, given explicitly (functions
        # outside dev/test refuse to start without one rather than fall back to it)
        if spec.webhook is not None and spec.webhook.sandbox_secret and spec.settings:
            prefix = load(spec.settings).model_config.get("env_prefix", "")
            var = f"{prefix}{spec.webhook.secret_field}".upper()
            env[var] = os.environ.get(var) or spec.webhook.sandbox_secret
    return {"DVCI_SANDBOX_URL": sandbox, **env}


def _port_or_free(port: int) -> int:
    """`port` when nothing listens there, else one the system picks (printed with the stack's URLs)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
            return port
        except OSError:
            probe.bind(("127.0.0.1", 0))
            return int(probe.getsockname()[1])


# (bucket, Object Lock) of the local S3 (moto): the defaults of the kinds' settings
DEV_BUCKETS = [("dvci-attachments", False), ("dvci-postal-labels", False), ("dvci-documents", False),
               ("dvci-audit", True)]


@dataclass
class FunctionProcess:
    service: str
    folder: str
    port: int
    env: dict[str, str]
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "functions_framework", "--asgi", "--signature-type", "http",
                "--target", "handle", "--source", str(ROOT / "functions" / self.folder / "main.py"),
                "--host", "127.0.0.1", "--port", str(self.port)]

    async def start(self) -> None:
        log_path = Path(".dvci") / f"{self.service}.log"
        log_path.parent.mkdir(exist_ok=True)
        out = log_path.open("ab")
        self.proc = await asyncio.create_subprocess_exec(*self.command(), env=self.env, stdout=out, stderr=out,
                                                         start_new_session=True)
        out.close()


@dataclass
class DevStack:
    port: int = 8080
    sandbox_port: int | None = None  # None: port + SANDBOX_OFFSET, or a free one if taken
    manifests_dir: Path = ROOT / "infra" / "knative" / "base"
    redis_url: str | None = None
    env: str = field(default_factory=lambda: os.environ.get("DVCI_ENV") or "dev")  # Redis key namespace
    extra_env: dict[str, str] = field(default_factory=dict)
    max_records: int = 20_000  # events the inspector remembers
    smtp_port: int | None = None  # None: sandbox port + 25, or a free one if taken
    console_port: int | None = None  # the operator console (console/) in this process; None: not started
    moto_port: int | None = None  # None: a free port
    ping_interval_s: float = 3.0  # dev runs every PingSource this often, not on its cron (quick feedback)
    receipt_delay_ms: float = 1500
    functions: dict[str, FunctionProcess] = field(default_factory=dict)
    broker: Broker | None = None
    _runners: list[web.AppRunner] = field(default_factory=list)
    _stopping: bool = False
    _watch: asyncio.Task | None = None

    async def start(self) -> None:
        """Start everything; when a part fails (a port taken...), stop what already started, then raise:
        no function process outlives a failed start."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        self.redis_url = self.redis_url or os.environ.get("REDIS_URL") or embedded_url()
        self._sandbox: RunningSandbox | None = await start_sandbox(
            "127.0.0.1", self.sandbox_port if self.sandbox_port is not None else self.port + SANDBOX_OFFSET,
            self.smtp_port, free_if_taken=self.sandbox_port is None)
        self.sandbox_port, self.smtp_port = self._sandbox.port, self._sandbox.smtp_port
        sandbox = self._sandbox.url
        aws = self._start_moto()
        signing = self._signing_pki(sandbox)
        manifests = mf.load(self.manifests_dir)
        base_env = {**os.environ, "REDIS_URL": self.redis_url, "DVCI_ENV": self.env,
                    "K_SINK": f"http://127.0.0.1:{self.port}/", "DVCI_SMS_VIETTEL_DELIVERED_AFTER_S": "2",
                    "DVCI_EMAIL_SMTP_PORT": str(self.smtp_port), **aws, **provider_env(sandbox), **signing,
                    **self.extra_env}
        functions = [n for n, svc in manifests.services.items()  # the console runs in-process (console_port)
                     if svc["metadata"].get("labels", {}).get("dvci.gov.vn/component") != "console"]
        for i, name in enumerate(sorted(functions)):  # broker port + 1, + 2, ... or a free one when taken
            self.functions[name] = FunctionProcess(name, manifests.function_folder(name),
                                                   _port_or_free(self.port + 1 + i), base_env)
        for fp in self.functions.values():
            await fp.start()
        routes = [Route(t, self._resolve(t.subscriber) or "", self._resolve(t.delivery.dead_letter_sink))
                  for t in manifests.triggers]
        # dead letters the sink cannot take now (Redis down) wait on disk and are handed over again
        self.broker = Broker(routes, max_records=self.max_records,
                             spool=DeadLetterSpool(Path(".dvci") / f"dead-letters-{self.env}.sqlite"))
        self.broker.resume_spool()
        await self._serve(self._broker_app(), self.port)
        await self.wait_ready()
        await self._wire_receipts(sandbox)
        if self.console_port is not None:
            from console.dev import start_console

            self.console = await start_console(self.console_port, self.redis_url, self.env,
                                               f"http://127.0.0.1:{self.port}/",
                                               f"http://127.0.0.1:{self.moto_port}" if self.moto_port else None)
        self._watch = asyncio.get_running_loop().create_task(self._supervise())
        self._pings = [asyncio.get_running_loop().create_task(self._ping(p)) for p in manifests.pingsources]
        STATE_FILE.parent.mkdir(exist_ok=True)
        self._wrote_state = True
        STATE_FILE.write_bytes(orjson.dumps({
            "redis_url": self.redis_url, "broker": f"http://127.0.0.1:{self.port}/", "sandbox": sandbox,
            "env": self.env, "functions": {n: f.url for n, f in self.functions.items()}, "pid": os.getpid(),
            "s3": aws.get("S3_ENDPOINT_URL")}))

    def _signing_pki(self, sandbox: str) -> dict[str, str]:
        """The test PKI (root, issuing CA, signers in a SoftHSM2 token, TSA, OCSP) for this sandbox, made when
        missing (`dvci pki init`); without SoftHSM2 the stack runs and sign_document answers 503."""
        try:
            from shared.integrations.signature.devstack import ensure_pki

            saved = {k: os.environ.get(k) for k in ("DVCI_SIGN_PKI_DIR", "DVCI_SIGN_BUCKET")}
            # its own PKI folder per env (never a test's); it is set in this process too: the in-process
            # sandbox (TSA, OCSP, remote signers) signs with it
            env = ensure_pki(sandbox, folder=str(Path(".dvci") / f"pki-{self.env}"))
            self._restore_env = saved  # put back by stop() (an in-process stack in tests)
            return env
        except Exception as exc:  # SoftHSM2 missing: `make run` installs it (scripts/setup-system.sh)
            log.warning("signing PKI not available; sign_document will answer 503",
                        extra={"error": f"{type(exc).__name__}: {str(exc)[:200]}"})
            return {}

    def _start_moto(self) -> dict[str, str]:
        """SES and S3 in moto's server mode, when moto is installed (`make run` installs it)."""
        try:
            import boto3
            from moto.server import ThreadedMotoServer
        except ImportError:
            log.warning("moto not installed: send_email has no SES fallback and no attachment store in dev")
            return {}
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        if self.moto_port:  # moto binds in its thread and would hang on a taken port: check first
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", self.moto_port))
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=self.moto_port or 0, verbose=False)
        self._moto.start()
        self.moto_port = self._moto.get_host_and_port()[1]
        url = f"http://127.0.0.1:{self.moto_port}"
        env = {"DVCI_EMAIL_SES_ENDPOINT_URL": url, "S3_ENDPOINT_URL": url,
               "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
               "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
               "AWS_DEFAULT_REGION": "ap-southeast-1"}
        for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
            os.environ.setdefault(var, env[var])  # the demo and dvci commands in this process use moto too
        kw = {"endpoint_url": url, "region_name": "ap-southeast-1", "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
              "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"]}
        boto3.client("ses", **kw).verify_email_identity(EmailAddress="no-reply@dichvucong.example.vn")
        s3 = boto3.client("s3", **kw)
        for bucket, locked in DEV_BUCKETS:  # what each kind writes to (attachments, labels, documents, audit)
            with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):  # moto's state is per process
                s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-southeast-1"},
                                 ObjectLockEnabledForBucket=locked)
        return env

    def _resolve(self, ref: dict[str, Any] | None) -> str | None:
        if not ref:
            return None
        if "uri" in ref and "ref" not in ref:
            return str(ref["uri"])
        target = ref.get("ref", ref)
        if target.get("kind") == "Service" and target["name"] in self.functions:
            return self.functions[target["name"]].url
        if target.get("kind") == "Broker":
            return f"http://127.0.0.1:{self.port}/"
        raise ValueError(f"cannot resolve subscriber {ref!r}: no such Service in the manifests")

    async def _serve(self, app: web.Application, port: int) -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        self._runners.append(runner)

    def _broker_app(self) -> web.Application:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        broker = self.broker
        assert broker is not None

        async def ingress(request: web.Request) -> web.Response:
            try:
                await broker.ingress({k.lower(): v for k, v in request.headers.items()}, await request.read())
            except InvalidEvent as exc:
                body = {"type": "urn:dvci:problem:invalid-event", "title": exc.title, "status": 400,
                        "detail": exc.detail, "errors": exc.errors}
                return web.Response(status=400, body=orjson.dumps(body), content_type=PROBLEM_JSON)
            return web.Response(status=202)

        async def events(request: web.Request) -> web.Response:
            limit = int(request.query.get("limit", "100"))
            return web.Response(body=orjson.dumps({"events": broker.snapshot(limit, request.query.get("type"))}),
                                content_type="application/json")

        async def one(request: web.Request) -> web.Response:
            record = broker.find(request.match_info["id"], request.query.get("source"))
            if record is None:
                return web.json_response({"title": "not found", "status": 404}, status=404)
            children = [broker.find(r["id"], r["source"]) for r in record.replies]
            from dataclasses import asdict
            return web.Response(body=orjson.dumps({"event": asdict(record),
                                                   "replies": [asdict(c) for c in children if c]}),
                                content_type="application/json")

        async def processes(request: web.Request) -> web.Response:
            return web.json_response({n: {"pid": f.proc.pid if f.proc else None, "port": f.port,
                                          "restarts": f.restarts} for n, f in self.functions.items()})

        app.router.add_post("/", ingress)
        app.router.add_get("/_broker/events", events)
        app.router.add_get("/_broker/events/{id}", one)
        app.router.add_get("/_broker/processes", processes)
        return app

    async def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            for fp in self.functions.values():
                while True:
                    with contextlib.suppress(aiohttp.ClientError):
                        async with session.get(fp.url + "health/readiness") as resp:
                            if resp.status == 200:
                                break
                    if fp.proc and fp.proc.returncode is not None:
                        raise RuntimeError(f"{fp.service} exited with {fp.proc.returncode}: see .dvci/{fp.service}.log")
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{fp.service} not ready after {timeout}s: see .dvci/{fp.service}.log")
                    await asyncio.sleep(0.1)

    async def _wire_receipts(self, sandbox: str) -> None:
        """Point the sandboxes' delivery receipts at send_sms's webhooks (Viettel's are pulled)."""
        from shared.integrations.registry import registry

        sms = self.functions.get("send-sms")
        async with aiohttp.ClientSession() as session:
            await self._wire_postal(session, sandbox)
            if sms is None:
                return
            for spec in registry("sms"):
                if spec.receipts == "push" and spec.webhook is not None:
                    body = {"callback_url": sms.url + spec.webhook.path.lstrip("/"), "delay_ms": self.receipt_delay_ms}
                elif spec.receipts == "pull":
                    body = {"delay_ms": 0}
                else:
                    continue
                async with session.post(f"{sandbox}/{spec.name}/_sandbox/receipts", json=body) as resp:
                    resp.raise_for_status()

    async def _wire_postal(self, session: aiohttp.ClientSession, sandbox: str) -> None:
        """Carriers move shipments on by themselves in dev (auto-progress); Viettel Post pushes its tracking
        to postal_track's webhook, VietnamPost's feed is polled by the `postal-poll` PingSource."""
        from shared.integrations.registry import KINDS, registry

        track = self.functions.get("postal-track")
        if track is None or "postal" not in KINDS:
            return
        for spec in registry("postal"):
            body: dict[str, Any] = {"auto_progress": True, "step_ms": self.receipt_delay_ms}
            if spec.webhook is not None:
                body["callback_url"] = track.url + spec.webhook.path.lstrip("/")
            async with session.post(f"{sandbox}/{spec.name}/_sandbox/config", json=body) as resp:
                resp.raise_for_status()

    async def _ping(self, source: dict[str, Any]) -> None:
        """A PingSource: its event, straight to its sink, every `ping_interval_s` (not its cron) in dev."""
        from dvci.broker import http_post
        from shared.runtime.events import CloudEvent, now_rfc3339

        meta, spec = source["metadata"], source["spec"]
        url = self._resolve(spec["sink"])
        if url is None:
            return
        data = orjson.loads(spec["data"]) if spec.get("contentType", "").endswith("json") else spec.get("data")
        n = 0
        while not self._stopping:
            await asyncio.sleep(self.ping_interval_s)
            n += 1
            event = CloudEvent(id=f"{meta['name']}-{int(time.time())}-{n}", type="dev.knative.sources.ping",
                               source=f"/apis/v1/namespaces/{meta.get('namespace', 'dvci')}/pingsources/"
                                      f"{meta['name']}",
                               time=now_rfc3339(), data=data)
            status, _body, _ = await http_post(url, event, 30.0)
            if status is None or status >= 300:
                log.warning("ping not accepted", extra={"pingsource": meta["name"], "status": status})

    async def _supervise(self) -> None:
        while not self._stopping:
            for fp in self.functions.values():
                if fp.proc and fp.proc.returncode is not None and not self._stopping:
                    log.warning("function process exited; restarting",
                                extra={"service": fp.service, "code": fp.proc.returncode})
                    fp.restarts += 1
                    await fp.start()
            await asyncio.sleep(0.2)

    async def stop(self) -> None:
        self._stopping = True
        if self._watch:
            self._watch.cancel()
        for task in getattr(self, "_pings", []):
            task.cancel()
        if getattr(self, "console", None) is not None:
            await self.console.stop()
        if self.broker is not None:
            self.broker.close_spool()
        for var, value in getattr(self, "_restore_env", {}).items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
        for fp in self.functions.values():
            if fp.proc and fp.proc.returncode is None:
                fp.proc.send_signal(signal.SIGTERM)
        for fp in self.functions.values():
            if fp.proc:
                try:
                    await asyncio.wait_for(fp.proc.wait(), 10)
                except TimeoutError:
                    fp.proc.kill()
        for runner in reversed(self._runners):
            await runner.cleanup()
        from shared.runtime.http import close_sessions

        await close_sessions()
        if getattr(self, "_sandbox", None) is not None:
            await self._sandbox.stop()  # type: ignore[union-attr]
            self._sandbox = None
        if getattr(self, "_moto", None) is not None:
            self._moto.stop()
            self._moto = None  # type: ignore[assignment]
        if getattr(self, "_wrote_state", False):  # never another stack's state file after a failed start
            with contextlib.suppress(FileNotFoundError):
                STATE_FILE.unlink()
