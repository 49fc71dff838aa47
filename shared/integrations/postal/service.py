"""Quote, create and cancel shipments with exactly one order per (dossier_id, purpose).

The client order number every carrier de-duplicates on is derived from (dossier_id, purpose) with
`event_digest`, so any request for the same shipment — a redelivery or a second event — lands on the same
carrier order. A per-shipment record in Redis (no citizen data: codes, numbers, fees) answers repeated
requests without calling the carrier, and a per-shipment lock keeps two requests from creating at once.
Before a create leaves, the record names the carrier (`pending`): after an unconfirmed attempt the
shipment goes back to that carrier only (asked by client order number, or re-sent under it), never to
another. BCCI purposes go to VietnamPost only; `other` takes the cheapest quote among carriers whose
breaker is not open and fails over on definitive unavailability. Labels go to object storage.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers

from shared.integrations.postal import (
    CarrierOrder,
    NotCancellable,
    Order,
    Parcel,
    Place,
    PostalCarrier,
    PostalFailure,
    QuoteOption,
    addresses,
    label,
)
from shared.integrations.postal.settings import PostalSettings
from shared.reliability.errors import OutcomeUnknown, ProviderRejected, ProviderUnavailable
from shared.reliability.failover import deliver
from shared.reliability.keys import event_digest
from shared.reliability.pipeline import Pipeline
from shared.runtime.app import EventContext
from shared.runtime.errors import EventInProgress, ProvidersUnavailable
from shared.storage.objects import ObjectStore
from shared.storage.redis import Keys

log = logging.getLogger("dvci.postal")
VN = ZoneInfo("Asia/Ho_Chi_Minh")
BCCI = ("result_delivery", "dossier_pickup")
_UNLOCK = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


@dataclass(frozen=True, slots=True)
class CreateRequest:
    dossier_id: str
    purpose: str
    service: str
    recipient: dict[str, Any]
    parcel: dict[str, Any]
    sender: dict[str, Any] | None = None
    cod_vnd: int = 0
    carrier: str | None = None


@dataclass(frozen=True, slots=True)
class Shipment:
    dossier_id: str
    purpose: str
    carrier: str
    service: str
    tracking_number: str
    carrier_order_id: str
    fee_vnd: int
    cod_vnd: int
    label_key: str
    estimated_delivery_at: str | None = None
    state: str = "created"


@dataclass(frozen=True, slots=True)
class Failed:
    reason: PostalFailure
    detail: str


@dataclass(slots=True)
class _Invalid(Exception):
    reason: PostalFailure
    detail: str


def shipment_id(dossier_id: str, purpose: str) -> str:
    return event_digest("postal-shipment", dossier_id, purpose)


def client_order_number(dossier_id: str, purpose: str) -> str:
    """The number carriers de-duplicate on: 20 characters, the same for every request of the shipment."""
    return "DVC" + event_digest("postal-order", dossier_id, purpose, length=17).upper()


def check_phone(raw: str, field: str) -> str:
    """A Vietnamese phone number (mobile or landline) in national form 0xxxxxxxxx."""
    try:
        number = phonenumbers.parse(raw, "VN")
    except phonenumbers.NumberParseException:
        raise _Invalid(PostalFailure.invalid_phone, f"{field} is not a phone number") from None
    if number.country_code != 84 or not phonenumbers.is_valid_number(number):
        raise _Invalid(PostalFailure.invalid_phone, f"{field} is not a valid Vietnamese phone number")
    return "0" + str(number.national_number)


def place(party: dict[str, Any], prefix: str) -> Place:
    phone = check_phone(str(party.get("phone", "")), f"{prefix}.phone")
    try:
        legacy = party.get("legacy")
        if legacy:
            unit = addresses.convert_legacy(str(legacy["province_code"]), str(legacy["district_code"]),
                                            str(legacy["ward_code"]), prefix=f"{prefix}.legacy")
        else:
            unit = addresses.resolve(str(party.get("province_code") or ""), str(party.get("ward_code") or ""),
                                     prefix=prefix)
    except addresses.InvalidAddress as exc:
        raise _Invalid(PostalFailure.invalid_address, str(exc)) from None
    return Place(str(party["name"]), phone, str(party["address_line"]), unit.province_code, unit.province_name,
                 unit.ward_code, unit.ward_name, party.get("email"), unit.legacy_district_name)


@dataclass(slots=True)
class _Delivery:
    """One create, deliverable to any candidate carrier under the same client order number."""

    service: PostalService
    record_key: str
    order: Order
    maybe_sent: set[str] = field(default_factory=set)

    async def send(self, provider: str) -> CarrierOrder:
        carrier = self.service.carriers[provider]
        if provider in self.maybe_sent:  # an earlier attempt may have created it: ask first
            try:
                found = await carrier.find(self.order)
                if found is not None:
                    return found
            except Exception:  # no answer: the re-send below de-duplicates
                pass
        await self.service.redis.hset(self.record_key, mapping={"pending": provider})
        self.maybe_sent.add(provider)
        try:
            return await carrier.create(self.order)
        except (ProviderUnavailable, ProviderRejected):  # certainly not created: free to go elsewhere
            await self.service.redis.hdel(self.record_key, "pending")
            self.maybe_sent.discard(provider)
            raise

    async def status(self, provider: str) -> CarrierOrder | None:
        return await self.service.carriers[provider].find(self.order)


class PostalService:
    def __init__(self, carriers: dict[str, PostalCarrier], pipeline: Pipeline, redis: Any, keys: Keys,
                 objects: ObjectStore, settings: PostalSettings):
        self.carriers, self.pipeline, self.redis, self.keys = carriers, pipeline, redis, keys
        self.objects, self.settings = objects, settings

    # -- keys ------------------------------------------------------------------------------------------
    def record_key(self, sid: str) -> str:
        return self.keys.key("postal", "shipment", sid)

    def tracking_key(self, carrier: str, number: str) -> str:
        return self.keys.key("postal", "tracking", carrier, number)

    @property
    def active_key(self) -> str:
        return self.keys.key("postal", "active")

    def allowed(self, purpose: str) -> list[str]:
        raw = getattr(self.settings, f"carriers_{purpose}")
        return [c.strip() for c in raw.split(",") if c.strip() in self.carriers]

    def sender(self, party: dict[str, Any] | None) -> Place:
        if party:
            return place(party, "sender")
        s = self.settings
        return place({"name": s.sender_name, "phone": s.sender_phone, "address_line": s.sender_address_line,
                      "province_code": s.sender_province_code, "ward_code": s.sender_ward_code,
                      "email": s.sender_email}, "sender")

    # -- quote -----------------------------------------------------------------------------------------
    async def quote(self, recipient: dict[str, Any], sender: dict[str, Any] | None, parcel: dict[str, Any],
                    service: str | None, cod_vnd: int) -> list[QuoteOption] | Failed:
        try:
            order = Order("", "", "standard", self.sender(sender), place(recipient, "recipient"),
                          Parcel(**parcel), cod_vnd)
        except _Invalid as exc:
            return Failed(exc.reason, exc.detail)
        names = list(self.carriers)
        results = await asyncio.gather(*(self.carriers[n].quote(order) for n in names), return_exceptions=True)
        options = [o for r in results if isinstance(r, list) for o in r if service is None or o.service == service]
        if not options:
            errors = [f"{n}: {r}" for n, r in zip(names, results, strict=True) if isinstance(r, BaseException)]
            if errors and all(isinstance(r, ProviderUnavailable) for r in results if isinstance(r, BaseException)):
                raise ProvidersUnavailable("no carrier could quote: " + "; ".join(errors))
            return Failed(PostalFailure.no_carrier, "no carrier offers this service")
        return sorted(options, key=lambda o: (o.fee_vnd, o.estimated_days, o.carrier))

    # -- create ----------------------------------------------------------------------------------------
    async def create(self, ctx: EventContext, req: CreateRequest) -> Shipment | Failed:
        try:
            sender, recipient = self.sender(req.sender), place(req.recipient, "recipient")
        except _Invalid as exc:
            return Failed(exc.reason, exc.detail)
        sid = shipment_id(req.dossier_id, req.purpose)
        key = self.record_key(sid)
        existing = await self._existing(key)
        if existing is not None:
            return existing
        allowed = self.allowed(req.purpose)
        if req.carrier is not None:
            if req.carrier not in allowed:
                return Failed(PostalFailure.no_carrier,
                              f"{req.carrier} is not allowed for {req.purpose} (allowed: {', '.join(allowed)})")
            allowed = [req.carrier]
        if not allowed:
            return Failed(PostalFailure.no_carrier, f"no carrier is configured for {req.purpose}")
        order = Order(client_order_number(req.dossier_id, req.purpose), req.dossier_id, req.service,  # type: ignore[arg-type]
                      sender, recipient, Parcel(**req.parcel), req.cod_vnd)
        pending = await self.redis.hget(key, "pending")
        pending_name = pending.decode() if isinstance(pending, bytes) else pending
        if pending_name:
            candidates = [pending_name]  # an unconfirmed create went there: never elsewhere
        elif req.purpose == "other" and len(allowed) > 1:
            candidates = await self._cheapest(order, allowed)
        else:
            candidates = allowed
        adm = await self.pipeline.admit(ctx, candidates)
        token = uuid.uuid4().hex
        lock = key + ":lock"
        if not await self.redis.set(lock, token, nx=True, px=self.settings.lock_ms):
            raise EventInProgress(f"shipment of dossier {req.dossier_id!r} ({req.purpose}) is being created "
                                  "by another request", retry_after=1.0)
        try:
            existing = await self._existing(key)
            if existing is not None:
                adm.audit = {"kind": "postal", "outcome": "existing", "carrier": existing.carrier}
                return existing
            again = await self.redis.hget(key, "pending")
            again_name = again.decode() if isinstance(again, bytes) else again
            if again_name and again_name != pending_name:
                raise EventInProgress("shipment changed while admitted; retry", retry_after=1.0)
            delivery = _Delivery(self, key, order, {pending_name} if pending_name else set())
            ctx.log_fields["dossier_id"] = req.dossier_id
            try:
                provider, created = await deliver(self.pipeline, adm, candidates, delivery,
                                                  remaining=ctx.remaining)
            except ProviderRejected as exc:
                return Failed(PostalFailure(exc.reason) if exc.reason in PostalFailure.__members__
                              else PostalFailure.rejected, exc.detail)
            except OutcomeUnknown as exc:
                return Failed(PostalFailure.outcome_unknown, exc.detail)
            shipment = await self._finish(key, sid, req, order, created)
            adm.audit = {"kind": "postal", "outcome": "created", "carrier": provider, "purpose": req.purpose}
            ctx.log_fields["carrier"] = provider
            return shipment
        finally:
            await self.redis.eval(_UNLOCK, 1, lock, token)

    async def _cheapest(self, order: Order, allowed: list[str]) -> list[str]:
        results = await asyncio.gather(*(self.carriers[n].quote(order) for n in allowed), return_exceptions=True)
        fees: dict[str, int] = {}
        for name, res in zip(allowed, results, strict=True):
            if isinstance(res, list):
                fee = min((o.fee_vnd for o in res if o.service == order.service), default=None)
                if fee is not None:
                    fees[name] = fee
        ranked = sorted(fees, key=lambda n: (fees[n], allowed.index(n)))
        # carriers that could not quote go last (their breaker/availability is decided at admission)
        return ranked + [n for n in allowed if n not in fees]

    async def _finish(self, key: str, sid: str, req: CreateRequest, order: Order, created: CarrierOrder) -> Shipment:
        carrier = self.carriers[created.carrier]
        label_key = f"postal/labels/{sid[:2]}/{sid}/{created.tracking_number}.pdf"
        pdf = await asyncio.to_thread(label.render, label.LabelData(
            created.carrier, getattr(carrier, "display", created.carrier), created.tracking_number, req.service,
            req.dossier_id, order.sender, order.recipient, req.cod_vnd, order.parcel.weight_g, order.parcel.contents))
        await self.objects.put(label_key, pdf, "application/pdf",
                               {"tracking-number": created.tracking_number, "carrier": created.carrier})
        shipment = Shipment(req.dossier_id, req.purpose, created.carrier, req.service, created.tracking_number,
                            created.carrier_order_id, created.fee_vnd, req.cod_vnd, label_key,
                            created.estimated_delivery_at)
        ttl = self.settings.shipment_ttl_s
        now = time.time()
        tkey = self.tracking_key(created.carrier, created.tracking_number)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={**_fields(shipment), "created_at": datetime.fromtimestamp(now, VN).isoformat()})
            pipe.hdel(key, "pending")
            pipe.expire(key, ttl)
            pipe.set(tkey, sid, ex=ttl)
            pipe.zadd(self.active_key, {f"{created.carrier}:{created.tracking_number}": now})
            await pipe.execute()
        return shipment

    async def _existing(self, key: str) -> Shipment | None:
        raw = await self.redis.hgetall(key)
        if not raw:
            return None
        rec = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
               for k, v in raw.items()}
        if rec.get("state") not in ("created", "cancelled"):
            return None
        return _shipment(rec)

    async def find(self, dossier_id: str, purpose: str) -> Shipment | None:
        return await self._existing(self.record_key(shipment_id(dossier_id, purpose)))

    async def by_tracking(self, number: str) -> Shipment | None:
        for carrier in self.carriers:
            sid = await self.redis.get(self.tracking_key(carrier, number))
            if sid:
                return await self._existing(self.record_key(sid.decode() if isinstance(sid, bytes) else sid))
        return None

    # -- cancel ----------------------------------------------------------------------------------------
    async def cancel(self, ctx: EventContext, dossier_id: str, purpose: str) -> Shipment | Failed:
        key = self.record_key(shipment_id(dossier_id, purpose))
        shipment = await self._existing(key)
        if shipment is None:
            return Failed(PostalFailure.unknown_shipment, f"no shipment for dossier {dossier_id!r} ({purpose})")
        if shipment.state == "cancelled":
            return shipment
        adm = await self.pipeline.admit(ctx, [shipment.carrier])
        carrier = self.carriers[shipment.carrier]
        try:
            await carrier.cancel(CarrierOrder(shipment.carrier, client_order_number(dossier_id, purpose),
                                              shipment.tracking_number, shipment.carrier_order_id, shipment.fee_vnd))
        except NotCancellable as exc:
            adm.result = (shipment.carrier, "ok")
            return Failed(PostalFailure.not_cancellable, str(exc))
        except ProviderUnavailable as exc:
            adm.result = (shipment.carrier, "fail")
            raise ProvidersUnavailable(f"{shipment.carrier} unavailable: {exc.detail}") from exc
        adm.result = (shipment.carrier, "ok")
        adm.audit = {"kind": "postal", "outcome": "cancelled", "carrier": shipment.carrier}
        await self.redis.hset(key, "state", "cancelled")
        return Shipment(**{**_fields_obj(shipment), "state": "cancelled"})


def _fields(s: Shipment) -> dict[str, str]:
    return {k: str(v) for k, v in _fields_obj(s).items() if v is not None}


def _fields_obj(s: Shipment) -> dict[str, Any]:
    return {f: getattr(s, f) for f in Shipment.__dataclass_fields__}


def _shipment(rec: dict[str, str]) -> Shipment:
    return Shipment(rec["dossier_id"], rec["purpose"], rec["carrier"], rec["service"], rec["tracking_number"],
                    rec["carrier_order_id"], int(rec["fee_vnd"]), int(rec["cod_vnd"]), rec["label_key"],
                    rec.get("estimated_delivery_at") or None, rec.get("state", "created"))


_services: dict[int, PostalService] = {}


def default_service() -> PostalService:
    service = _services.get(id(asyncio.get_running_loop()))
    return service if service is not None else _build()


def _build() -> PostalService:
    from shared.integrations.postal.providers import REGISTRY
    from shared.reliability.policy import ProviderPolicy
    from shared.reliability.settings import ReliabilitySettings
    from shared.runtime.settings import runtime_settings
    from shared.storage.redis import get_fast_redis, get_redis

    settings = PostalSettings()
    keys = Keys(runtime_settings().env)
    carriers: dict[str, PostalCarrier] = {spec.name: spec.new_client() for spec in REGISTRY}
    pipeline = Pipeline(get_fast_redis(), keys, "postal", {n: ProviderPolicy(n) for n in carriers},
                        ReliabilitySettings().idempotency())
    service = _services[id(asyncio.get_running_loop())] = PostalService(
        carriers, pipeline, get_redis(), keys, ObjectStore(settings.label_bucket, settings.s3_endpoint_url), settings)
    return service
