"""The local broker: Knative filters, retries and backoff (injected clock), dead-lettering with the
knativeerror* extensions, reply routing and the hop limit — and the manifests it reads are the deployed ones."""

from __future__ import annotations

import base64

import pytest

from dvci import manifests as mf
from dvci.broker import Broker, Route, retryable
from dvci.filters import UnsupportedFilter, match, trigger_matches
from shared.runtime.events import CloudEvent, binary_headers

ATTRS = {"type": "vn.gov.dvc.sms.send.requested", "source": "/dvc/core", "id": "1", "dossierid": "H29-1"}


@pytest.mark.parametrize(("expr", "ok"), [
    ({"exact": {"type": "vn.gov.dvc.sms.send.requested"}}, True),
    ({"exact": {"type": "vn.gov.dvc.sms.accepted"}}, False),
    ({"prefix": {"type": "vn.gov.dvc.sms."}}, True),
    ({"suffix": {"type": ".requested"}}, True),
    ({"suffix": {"missing": "x"}}, False),
    ({"all": [{"prefix": {"type": "vn."}}, {"exact": {"source": "/dvc/core"}}]}, True),
    ({"all": [{"prefix": {"type": "vn."}}, {"exact": {"source": "/other"}}]}, False),
    ({"any": [{"exact": {"source": "/other"}}, {"exact": {"dossierid": "H29-1"}}]}, True),
    ({"not": {"exact": {"source": "/dvc/core"}}}, False),
    ({"not": {"prefix": {"type": "vn.gov.dvc.email"}}}, True),
    ({"prefix": {"type": "vn."}, "exact": {"source": "/other"}}, False),
])
def test_filters_dialects(expr, ok):
    assert match(ATTRS, expr) is ok


def test_legacy_attributes_and_precedence():
    assert trigger_matches(ATTRS, {"type": "vn.gov.dvc.sms.send.requested"}, [])
    assert not trigger_matches(ATTRS, {"type": "x"}, [])
    assert trigger_matches(ATTRS, {"dossierid": ""}, [])  # empty value: attribute must exist
    assert not trigger_matches(ATTRS, {"subject": ""}, [])
    assert trigger_matches(ATTRS, {"type": "x"}, [{"prefix": {"type": "vn."}}])  # filters win
    with pytest.raises(UnsupportedFilter):
        match(ATTRS, {"cesql": "type = 'x'"})


def test_backoff_formulas():
    exp = mf.Delivery(retry=4, backoff_policy="exponential", backoff_delay_s=0.5)
    lin = mf.Delivery(retry=4, backoff_policy="linear", backoff_delay_s=0.5)
    assert [exp.backoff(n) for n in range(1, 5)] == [0.5, 1.0, 2.0, 4.0]
    assert [lin.backoff(n) for n in range(1, 5)] == [0.0, 0.5, 1.0, 1.5]


@pytest.mark.parametrize(("text", "seconds"), [("PT0.2S", 0.2), ("PT1M30S", 90), ("P1D", 86400), ("PT2H", 7200)])
def test_iso_durations(text, seconds):
    assert mf.iso_duration(text) == pytest.approx(seconds)


def test_retryable_statuses_follow_knative():
    assert all(retryable(s) for s in (None, 404, 408, 409, 429, 500, 502, 503))
    assert not any(retryable(s) for s in (400, 401, 403, 410, 422))


def test_deployed_manifests_route_every_function():
    m = mf.load("infra/knative/base")
    assert "dvci" in m.brokers and m.brokers["dvci"].dead_letter_sink
    sms = next(t for t in m.triggers if t.subscriber["ref"]["name"] == "send-sms")
    assert sms.filter_attributes == {"type": "vn.gov.dvc.sms.send.requested"}
    assert sms.delivery.retry == 5 and sms.delivery.backoff_delay_s == 0.5  # inherited from the Broker
    assert m.function_folder("send-sms") == "send_sms"


class FakeNet:
    """The subscriber side, scripted: a list of (status, headers, body) answers per URL."""

    def __init__(self, answers):
        self.answers = answers
        self.calls: list[tuple[str, CloudEvent]] = []

    async def post(self, url, event, timeout):
        self.calls.append((url, event))
        script = self.answers.get(url, [(202, {}, b"")])
        status, headers, body = script.pop(0) if len(script) > 1 else script[0]
        return status, body, headers


def make_broker(answers, delivery, *, sleeps, filters=None, extra_routes=()):
    trig = mf.TriggerSpec("t", "dvci", {"type": "a.requested"} if filters is None else {}, filters or [],
                          {"ref": {"kind": "Service", "name": "fn"}}, delivery)
    net = FakeNet(answers)

    async def sleep(s):
        sleeps.append(s)

    routes = [Route(trig, "http://fn/", "http://dls/"), *extra_routes]
    return Broker(routes, sleep=sleep, post=net.post), net


def event(type_="a.requested", **ext):
    return CloudEvent(id="e1", source="/test", type=type_, extensions=dict(ext), data={"k": 1})


async def test_retries_with_exponential_backoff_then_dead_letter():
    sleeps: list[float] = []
    d = mf.Delivery(retry=3, backoff_policy="exponential", backoff_delay_s=0.2,
                    dead_letter_sink={"uri": "http://dls/"})
    broker, net = make_broker({"http://fn/": [(503, {}, b'{"detail":"down"}')]}, d, sleeps=sleeps)
    broker.publish(event())
    await broker.drain()
    fn_calls = [c for c in net.calls if c[0] == "http://fn/"]
    assert len(fn_calls) == 4  # first attempt + 3 retries
    assert sleeps == [0.2, 0.4, 0.8]
    url, letter = net.calls[-1]
    assert url == "http://dls/"
    assert letter.extensions["knativeerrordest"] == "http://fn/"
    assert letter.extensions["knativeerrorcode"] == "503"
    assert base64.b64decode(letter.extensions["knativeerrordata"]) == b'{"detail":"down"}'
    assert letter.id == "e1" and letter.data == {"k": 1}
    assert broker.find("e1").deliveries[0].outcome == "dead-lettered"


async def test_linear_backoff_first_retry_immediate():
    sleeps: list[float] = []
    d = mf.Delivery(retry=2, backoff_policy="linear", backoff_delay_s=1.0)
    broker, _ = make_broker({"http://fn/": [(500, {}, b"")]}, d, sleeps=sleeps)
    broker.publish(event())
    await broker.drain()
    assert sleeps == [1.0]  # 0 (immediate, no sleep), then 1.0


async def test_non_retryable_4xx_dead_letters_at_once():
    sleeps: list[float] = []
    broker, net = make_broker({"http://fn/": [(400, {}, b"bad")]}, mf.Delivery(retry=5), sleeps=sleeps)
    broker.publish(event())
    await broker.drain()
    assert [c[0] for c in net.calls] == ["http://fn/", "http://dls/"]
    assert sleeps == []


async def test_truncated_error_data():
    sleeps: list[float] = []
    broker, net = make_broker({"http://fn/": [(400, {}, b"x" * 5000)]}, mf.Delivery(), sleeps=sleeps)
    broker.publish(event())
    await broker.drain()
    assert len(net.calls[-1][1].extensions["knativeerrordata"]) == 1024


async def test_reply_is_routed_back_and_hop_limit_stops_loops():
    sleeps: list[float] = []
    reply = CloudEvent(id="r1", source="/fn", type="a.requested", data={"again": True})  # loops to itself
    answer = (200, {k: v for k, v in binary_headers(reply).items()}, b'{"again":true}')
    broker, net = make_broker({"http://fn/": [answer]}, mf.Delivery(), sleeps=sleeps)
    broker.publish(event(knativebrokerttl="3"))
    await broker.drain()
    first = broker.find("e1", "/test")
    assert first.replies == [{"id": "r1", "type": "a.requested", "source": "/fn"}]
    assert len([c for c in net.calls if c[0] == "http://fn/"]) == 3  # ttl 3, 2, 1 delivered; 0 dropped
    assert broker.find("r1", "/fn").dropped


async def test_2xx_with_non_event_body_is_a_failure():
    sleeps: list[float] = []
    broker, net = make_broker({"http://fn/": [(200, {"content-type": "text/html"}, b"OK")]},
                              mf.Delivery(retry=1), sleeps=sleeps)
    broker.publish(event())
    await broker.drain()
    assert broker.find("e1").deliveries[0].outcome == "dead-lettered"
    assert net.calls[-1][1].extensions["knativeerrorcode"] == "502"


async def test_unmatched_event_goes_nowhere():
    broker, net = make_broker({}, mf.Delivery(), sleeps=[])
    broker.publish(event("b.other"))
    await broker.drain()
    assert net.calls == []
