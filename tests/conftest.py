"""Shared fixtures: real Redis (REDIS_URL or the embedded server), the sandbox over real HTTP, the
functions served by functions-framework's own ASGI app."""

from __future__ import annotations

import os
import re
import socket
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SANDBOX_PORT = free_port()
SANDBOX = f"http://127.0.0.1:{SANDBOX_PORT}"
SMTP_PORT = free_port()
MOTO_PORT = free_port()
MOTO = f"http://127.0.0.1:{MOTO_PORT}"
TEST_ENV = f"test{os.getpid()}"
POLICY = Path(tempfile.mkdtemp(prefix="dvci-test-")) / "providers.yaml"
POLICY.write_text("""
order: [viettel, vnpt, mobifone]
breaker_defaults: {mode: consecutive, failure_threshold: 3, cooldown_ms: 400, probe_lease_ms: 2000}
providers:
  viettel: {tps: 1000, burst: 100, price_vnd: {gsm7: 650, ucs2: 900}}
  vnpt: {tps: 1000, burst: 100, price_vnd: {gsm7: 680, ucs2: 950}}
  mobifone: {tps: 1000, burst: 100, price_vnd: {gsm7: 700, ucs2: 980}}
recipient_limits:
  transactional: {rate: 5, period_s: 3600, burst: 5}
  otp: {rate: 10, period_s: 3600, burst: 10}
""")
os.environ.update({
    "DVCI_ENV": TEST_ENV,
    "DVCI_SMS_VIETTEL_URL": f"{SANDBOX}/viettel/bulkapi",
    "DVCI_SMS_VNPT_URL": f"{SANDBOX}/vnpt/api",
    "DVCI_SMS_MOBIFONE_URL": f"{SANDBOX}/mobifone",
    "DVCI_SMS_VIETTEL_TIMEOUT_S": "0.5",
    "DVCI_SMS_VNPT_TIMEOUT_S": "0.5",
    "DVCI_SMS_MOBIFONE_TIMEOUT_S": "0.5",
    "DVCI_SMS_POLICY_FILE": str(POLICY),
    "DVCI_LOG_LEVEL": "INFO",  # every "event handled" line goes through the redaction scan
    "DVCI_EMAIL_SMTP_PORT": str(SMTP_PORT),
    "DVCI_EMAIL_SMTP_TIMEOUT_S": "2",
    "DVCI_EMAIL_SES_ENDPOINT_URL": MOTO,
    "S3_ENDPOINT_URL": MOTO,
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "ap-southeast-1",
})
os.environ.pop("K_SINK", None)
sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
async def redis():
    from shared.storage.redis import close_clients, get_redis

    client = get_redis()
    await client.ping()
    yield client
    await close_clients()


@pytest.fixture(autouse=True)
async def clean_state(request):
    """Each test starts with no state under this run's namespace."""
    if "redis" not in request.fixturenames and "sandbox" not in request.fixturenames \
            and "send_sms" not in request.fixturenames:
        yield
        return
    from shared.storage.redis import get_redis

    client = get_redis()
    keys = [k async for k in client.scan_iter(match=f"dvci:{TEST_ENV}:*", count=1000)]
    if keys:
        await client.delete(*keys)
    yield


@pytest.fixture(scope="session")
async def sandbox_server():
    from aiohttp import web

    from sandbox.server import build_app, simulators, start_smtp

    sims = {s.name: s for s in simulators()}
    runner = web.AppRunner(build_app(list(sims.values())))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", SANDBOX_PORT).start()
    await start_smtp(list(sims.values()), port=SMTP_PORT)
    yield sims
    await runner.cleanup()


@pytest.fixture
async def sandbox(sandbox_server):
    from sandbox.base import ReceiptPolicy

    for sim in sandbox_server.values():
        sim.faults = None
        sim.requests.clear()
        sim.by_reference.clear()
        sim.messages.clear()
        sim.receipts = ReceiptPolicy()
        sim.receipts_sent.clear()
    yield sandbox_server


def asgi_client(folder: str):
    import httpx
    from functions_framework.aio import create_asgi_app

    app = create_asgi_app("handle", str(ROOT / "functions" / folder / "main.py"), "http")
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://function")


@pytest.fixture
async def send_sms(redis, sandbox):
    async with asgi_client("send_sms") as client:
        yield client


def ensure_bucket(name: str, *, locked: bool = False):
    """Create the bucket in the tests' moto unless it exists (an in-process `dvci dev` shares moto's state)."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=MOTO)
    try:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "ap-southeast-1"},
                         ObjectLockEnabledForBucket=locked)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    return s3


@pytest.fixture(scope="session")
def moto_server():
    """Amazon SES and S3 as moto's server mode (real HTTP, in a thread of this process)."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=MOTO_PORT, verbose=False)
    server.start()
    boto3.client("ses", endpoint_url=MOTO).verify_email_identity(EmailAddress="no-reply@dichvucong.example.vn")
    ensure_bucket("dvci-attachments")
    yield MOTO
    server.stop()


@pytest.fixture
async def send_email(redis, sandbox, moto_server):
    async with asgi_client("send_email") as client:
        yield client


@pytest.fixture
async def dead_letter(redis):
    async with asgi_client("dead_letter") as client:
        yield client


@pytest.fixture(scope="session", autouse=True)
async def _close_http():
    yield
    from shared.integrations.httpclient import close_clients
    from shared.runtime.http import close_sessions

    await close_sessions()
    close_clients()


# -- the log redaction scan: everything the suite logged through the project's formatter, and the logs
#    of the function processes it started, must be free of phone numbers, e-mail addresses and CCCD ids.
_LOGGED: list[str] = []
_PII = re.compile(r"(?<![\d-])(?:\+?84|0)(?:3|5|7|8|9)\d{8}(?![\d-])|[\w.+-]+@[\w-]+\.[\w.]+|(?<![\d-])\d{12}(?![\d-])")


def pytest_configure(config):
    from shared.observability import logs
    from shared.observability.logs import JsonFormatter

    # the in-process functions log to a file, never to pytest's captured stderr (which pytest would
    # print after its closing line); the redaction scan below reads every formatted line anyway
    log_file = Path(tempfile.gettempdir()) / f"dvci-pytest-{os.getpid()}.jsonl"
    logs.configure("INFO", stream=log_file.open("a", encoding="utf-8"))

    original = JsonFormatter.format

    def capturing(self, record):
        line = original(self, record)
        _LOGGED.append(line)
        return line

    JsonFormatter.format = capturing  # type: ignore[method-assign]


def pytest_sessionfinish(session, exitstatus):
    import glob
    import logging

    from shared.observability.logs import BufferedStreamHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, BufferedStreamHandler):
            handler.flush()

    lines = list(_LOGGED)
    for path in glob.glob(os.path.join(os.environ.get("TMPDIR", "/tmp"), f"dvci-test-{TEST_ENV}-*.log")):
        with open(path, errors="replace") as fh:
            lines += [line for line in fh if line.startswith("{")]
    leaks = [line for line in lines if _PII.search(line)]
    print(f"\nlog redaction scan: {len(lines)} structured log lines, {len(leaks)} with citizen data")
    if leaks:
        for line in leaks[:5]:
            print("  LEAK:", _PII.sub("<pii>", line)[:300])
        session.exitstatus = 1


# -- postal (postal_create, postal_track): carrier simulators on their own port (they join the shared
#    sandbox server once `postal` is in shared/integrations/registry.py:KINDS), label bucket in moto
POSTAL_SANDBOX_PORT = free_port()
POSTAL_SANDBOX = f"http://127.0.0.1:{POSTAL_SANDBOX_PORT}"
os.environ.update({
    "DVCI_POSTAL_VNPOST_URL": f"{POSTAL_SANDBOX}/vnpost",
    "DVCI_POSTAL_VIETTELPOST_URL": f"{POSTAL_SANDBOX}/viettelpost/v2",
    "DVCI_POSTAL_VNPOST_TIMEOUT_S": "0.5",
    "DVCI_POSTAL_VIETTELPOST_TIMEOUT_S": "0.5",
    "DVCI_POSTAL_LABEL_BUCKET": "dvci-postal-labels",
})


@pytest.fixture(scope="session")
async def postal_sandbox_server():
    from aiohttp import web

    from sandbox.viettelpost import ViettelpostSimulator
    from sandbox.vnpost import VnpostSimulator

    sims = {"vnpost": VnpostSimulator(), "viettelpost": ViettelpostSimulator()}
    app = web.Application()
    for name, sim in sims.items():
        app.add_subapp(f"/{name}/", sim.app())
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", POSTAL_SANDBOX_PORT).start()
    yield sims
    await runner.cleanup()


@pytest.fixture
async def postal_sandbox(postal_sandbox_server, redis, moto_server):

    ensure_bucket("dvci-postal-labels")
    for sim in postal_sandbox_server.values():
        sim.reset()
    yield postal_sandbox_server


@pytest.fixture
async def postal_create(postal_sandbox):
    async with asgi_client("postal_create") as client:
        yield client


# -- lgsp_sync (issue 12): the DVCQG and LGSP sandboxes on their own port -----------------------------
LGSP_SANDBOX_PORT = free_port()
LGSP_SANDBOX = f"http://127.0.0.1:{LGSP_SANDBOX_PORT}"
os.environ.update({
    "DVCI_DVCQG_URL": f"{LGSP_SANDBOX}/dvcqg", "DVCI_LGSP_URL": f"{LGSP_SANDBOX}/lgsp",
    "DVCI_DVCQG_TIMEOUT_S": "1", "DVCI_LGSP_TIMEOUT_S": "1",
    "DVCI_LGSP_SYNC_BREAKER_COOLDOWN_MS": "300", "DVCI_LGSP_SYNC_DRAIN_WAIT_MS": "3000",
})


@pytest.fixture(scope="session")
async def lgsp_sandbox_server():
    from aiohttp import web

    from sandbox.dvcqg import DvcqgSimulator
    from sandbox.lgsp import LgspSimulator

    sims = {"dvcqg": DvcqgSimulator(), "lgsp": LgspSimulator()}
    app = web.Application()
    for name, sim in sims.items():
        app.add_subapp(f"/{name}/", sim.app())
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", LGSP_SANDBOX_PORT).start()
    yield sims
    await runner.cleanup()


@pytest.fixture
async def lgsp_sandbox(lgsp_sandbox_server, redis):
    for sim in lgsp_sandbox_server.values():
        sim.faults = None
        sim.requests.clear()
        sim.by_reference.clear()
        sim.reset()
    yield lgsp_sandbox_server


@pytest.fixture
async def lgsp_sync(lgsp_sandbox):
    async with asgi_client("lgsp_sync") as client:
        yield client


# -- signing (sign_document): the test PKI (keys in a SoftHSM2 token), TSA/OCSP/SmartCA/MySign sandboxes on
#    their own port (the certificates point at it), documents in moto's S3 ---------------------------------
SIGN_SANDBOX_PORT = free_port()
SIGN_SANDBOX = f"http://127.0.0.1:{SIGN_SANDBOX_PORT}"
SIGN_PKI_DIR = Path(tempfile.mkdtemp(prefix="dvci-pki-")) / "pki"
os.environ.update({
    "DVCI_SIGN_PKI_DIR": str(SIGN_PKI_DIR),
    "DVCI_SIGN_TSA_URL": f"{SIGN_SANDBOX}/tsa/",
    "DVCI_SIGN_TSA_TIMEOUT_S": "2",
    "DVCI_SIGN_SMARTCA_URL": f"{SIGN_SANDBOX}/smartca/sca/sp769",
    "DVCI_SIGN_MYSIGN_URL": f"{SIGN_SANDBOX}/mysign/vtss/service",
    "DVCI_SIGN_SMARTCA_TIMEOUT_S": "2",
    "DVCI_SIGN_MYSIGN_TIMEOUT_S": "2",
    "DVCI_SIGN_BUCKET": "dvci-documents",
})


@pytest.fixture(scope="session")
def signing_pki():
    from shared.integrations.signature import pki

    return pki.init(SIGN_PKI_DIR, base_url=SIGN_SANDBOX)


@pytest.fixture(scope="session")
async def signing_sandbox_server(signing_pki):
    from aiohttp import web

    from sandbox.mysign import MySignSimulator
    from sandbox.ocsp import OcspSimulator
    from sandbox.server import build_app
    from sandbox.smartca import SmartCaSimulator
    from sandbox.tsa import TsaSimulator

    sims = {s.name: s for s in (TsaSimulator(), OcspSimulator(), SmartCaSimulator(), MySignSimulator())}
    runner = web.AppRunner(build_app(list(sims.values())))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", SIGN_SANDBOX_PORT).start()
    yield sims
    await runner.cleanup()


@pytest.fixture
async def signing_sandbox(signing_sandbox_server):
    for sim in signing_sandbox_server.values():
        sim.faults = None
        sim.requests.clear()
        sim.by_reference.clear()
        sim.messages.clear()
        sim.receipts_sent.clear()
        sim.receipts.callback_url = None
        if hasattr(sim, "phone"):
            sim.phone.clear()
    yield signing_sandbox_server


@pytest.fixture(scope="session")
def documents_bucket(moto_server):

    return ensure_bucket("dvci-documents")


@pytest.fixture
async def sign_document(redis, signing_sandbox, documents_bucket):
    async with asgi_client("sign_document") as client:
        yield client
