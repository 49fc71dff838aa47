"""The naive stack: the same SMS send written the way the tooling's defaults lead — httpx's default
AsyncClient pool, pybreaker with CircuitRedisStorage (synchronous Redis), tenacity, a Redis SET NX for
idempotency. Measured beside the real pipeline by `make bench`; never deployed."""

from __future__ import annotations

import hashlib
import os
from xml.sax.saxutils import escape

import httpx
import orjson
import pybreaker
import redis
import redis.asyncio as aioredis
from starlette.requests import Request
from starlette.responses import Response
from tenacity import retry, stop_after_attempt, wait_random_exponential

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
VIETTEL = os.environ.get("DVCI_SMS_VIETTEL_URL", "http://127.0.0.1:8900/viettel/bulkapi")
breaker = pybreaker.CircuitBreaker(
    fail_max=5, reset_timeout=30,
    state_storage=pybreaker.CircuitRedisStorage(pybreaker.STATE_CLOSED, redis.Redis.from_url(REDIS_URL),
                                                namespace="naive-viettel"))
_client: httpx.AsyncClient | None = None
_redis: aioredis.Redis | None = None


@retry(stop=stop_after_attempt(3), wait=wait_random_exponential(multiplier=0.05, max=0.5), reraise=True)
async def call_viettel(client: httpx.AsyncClient, ref: str, to: str, text: str) -> bytes:
    body = ("<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" "
            "xmlns:impl=\"http://impl.bulkSms.ws/\"><soapenv:Body><impl:wsCpMt>"
            f"<User>sandbox</User><Password>sandbox</Password><CPCode>DVC</CPCode><RequestID>{ref}</RequestID>"
            f"<UserID>{to}</UserID><ReceiverID>{to}</ReceiverID><ServiceID>DVCTEST</ServiceID>"
            f"<CommandCode>bulksms</CommandCode><Content>{escape(text)}</Content><ContentType>1</ContentType>"
            "</impl:wsCpMt></soapenv:Body></soapenv:Envelope>")
    with breaker.calling():
        resp = await client.post(VIETTEL, content=body, headers={"content-type": "text/xml"})
        resp.raise_for_status()
        return resp.content


async def handle(request: Request) -> Response:
    global _client, _redis
    if request.url.path.startswith("/health"):
        return Response(b"ok")
    _client = _client or httpx.AsyncClient()
    _redis = _redis or aioredis.Redis.from_url(REDIS_URL)
    event_id, source = request.headers["ce-id"], request.headers["ce-source"]
    data = orjson.loads(await request.body())
    key = "naive:" + hashlib.sha256(f"{source}{event_id}".encode()).hexdigest()
    if not await _redis.set(key, "1", nx=True, ex=86400):
        return Response(status_code=409)
    to = "84" + data["to"].lstrip("0")
    await call_viettel(_client, key[6:30], to, data["text"])
    reply = {"to": to, "provider": "viettel", "provider_message_id": key[6:30], "segments": 1, "encoding": "ucs2"}
    return Response(orjson.dumps(reply), headers={"ce-specversion": "1.0", "ce-type": "vn.gov.dvc.sms.accepted",
                                                  "ce-id": key[6:42], "ce-source": "/naive"},
                    media_type="application/json")
