"""Events produced outside a request go to K_SINK with K_CE_OVERRIDES applied."""

from __future__ import annotations

import pytest

from shared.runtime import FunctionApp
from shared.runtime.settings import RuntimeSettings
from tests.helpers import Receiver


@pytest.fixture
async def receiver():
    async with Receiver() as r:
        yield r


async def test_emit_posts_binary_event_with_overrides(receiver):
    got = receiver.got
    settings = RuntimeSettings(K_SINK=receiver.url, K_CE_OVERRIDES='{"extensions": {"cluster": "hcm-1"}}')
    app = FunctionApp("send-sms", settings=settings)
    event = await app.emit("vn.gov.dvc.sms.delivery.updated", {"status": "delivered"}, key="ref-1",
                           extensions={"dossierid": "D-9"})
    assert len(got) == 1
    headers, body = got[0]
    assert headers["ce-type"] == "vn.gov.dvc.sms.delivery.updated"
    assert headers["ce-source"] == "/dvci/send-sms"
    assert headers["ce-cluster"] == "hcm-1" and headers["ce-dossierid"] == "D-9"
    assert headers["content-type"] == "application/json"
    assert body == b'{"status":"delivered"}'
    again = await app.emit("vn.gov.dvc.sms.delivery.updated", {"status": "delivered"}, key="ref-1")
    assert again.id == event.id == headers["ce-id"]


async def test_emit_refused_by_sink_raises(receiver):
    from shared.runtime.errors import ProvidersUnavailable

    receiver.status = 500
    app = FunctionApp("send-sms", settings=RuntimeSettings(K_SINK=receiver.url))
    with pytest.raises(ProvidersUnavailable):
        await app.emit("t", {}, key="k")


async def test_emit_without_k_sink_is_a_clear_error():
    from shared.runtime.sink import SinkNotConfigured

    app = FunctionApp("send-sms", settings=RuntimeSettings(K_SINK=None))
    with pytest.raises(SinkNotConfigured, match="K_SINK is not set"):
        await app.emit("t", {}, key="k")
