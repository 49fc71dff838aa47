"""VietnamPost (MyVNP API, docs/postal.md; tracking feed as NGSP's). Client order number:
`saleOrderCode` (de-duplicated by the carrier); item codes are UPU S10 and validated here.

Wire-format assumptions beyond the reference (docs/postal.md): login `POST /customer-partner/GetAccessToken
{username, password}` -> `{token, expiresIn}`; `ServicesCharge` -> `[{serviceCode: "EMS"|"BK", totalFee,
deliveryDays}]`; `CreateOrder` answers `{status: "00", originalID, itemCode, totalFee, expectedDelivery}`
or an error status ("10" receiver address, "11" receiver phone, "12" parcel refused, "99" busy);
`GET /customer-partner/getOrder?saleOrderCode=|itemCode=` -> `{status: "00", order: {..., events: [...]}}`
or `{status: "04"}` (not found); `orderCancel {OriginalId}` -> `[{caseId}]` or `{status: "20"}` (picked up).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from shared.integrations.postal import (
    CarrierEvent,
    CarrierOrder,
    NotCancellable,
    Order,
    PostalFailure,
    QuoteOption,
    Service,
    s10,
)
from shared.integrations.postal._http import TokenCache, call_json
from shared.integrations.postal.settings import VnpostSettings
from shared.reliability.errors import ProviderAmbiguous, ProviderRejected, ProviderUnavailable

VN = ZoneInfo("Asia/Ho_Chi_Minh")
SERVICE_CODES: dict[str, str] = {"express": "EMS", "standard": "BK"}
SERVICES: dict[str, Service] = {"EMS": "express", "BK": "standard"}
REJECTIONS = {"10": PostalFailure.invalid_address, "11": PostalFailure.invalid_phone,
              "12": PostalFailure.parcel_rejected}


def parse_time(text: str) -> int:
    """Milliseconds since the epoch of a VietnamPost time: ISO 8601, or `dd/MM/yyyy HH:mm:ss` (Vietnam time)."""
    text = str(text).strip()
    try:
        dt = datetime.strptime(text, "%d/%m/%Y %H:%M:%S").replace(tzinfo=VN)
    except ValueError:
        dt = datetime.fromisoformat(text)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=VN)
    return int(dt.timestamp() * 1000)


def event_from(doc: dict[str, Any], carrier: str = "vnpost") -> CarrierEvent:
    """One tracking document (feed or per-order) as a CarrierEvent."""
    return CarrierEvent(carrier=carrier, tracking_number=str(doc.get("ItemCode") or ""),
                        carrier_status=str(doc.get("StatusCode")), description=str(doc.get("StatusMessage") or ""),
                        at_ms=parse_time(doc["EventTime"]), location=str(doc.get("POSID") or "") or None,
                        reference=str(doc.get("OrderNumber") or "") or None, event_id=str(doc.get("_id") or ""))


class VnpostCarrier:
    name = "vnpost"
    display = "VNPost"

    def __init__(self, settings: VnpostSettings | None = None):
        self.settings = settings or VnpostSettings()
        self.tokens = TokenCache(self._login)

    async def _login(self) -> tuple[str, float]:
        s = self.settings
        status, reply = await call_json(self.name, "POST", f"{s.url}/customer-partner/GetAccessToken",
                                        {"username": s.username, "password": s.password.get_secret_value(),
                                         "customerCode": s.customer_code}, timeout_s=s.timeout_s, safe=True)
        if status != 200 or not isinstance(reply, dict) or not reply.get("token"):
            raise ProviderUnavailable(self.name, f"login refused (HTTP {status})")
        return str(reply["token"]), float(reply.get("expiresIn") or 3600)

    async def _call(self, method: str, path: str, payload: Any = None, *, safe: bool) -> Any:
        for _ in range(2):
            token = await self.tokens.get()
            status, reply = await call_json(self.name, method, f"{self.settings.url}{path}", payload,
                                            headers={"token": token}, timeout_s=self.settings.timeout_s, safe=safe)
            if status == 401:  # expired: log in again, once (the request was refused, nothing happened)
                self.tokens.invalidate(token)
                continue
            if status >= 400 and status not in (404, 422):
                raise ProviderUnavailable(self.name, f"HTTP {status}")
            return reply
        raise ProviderUnavailable(self.name, "token refused after a fresh login")

    @staticmethod
    def _parties(order: Order) -> dict[str, Any]:
        s, r = order.sender, order.recipient
        return {
            "senderName": s.name, "senderPhone": s.phone, "senderAddress": s.address_line,
            "senderProvinceCode": s.province_code, "senderProvinceName": s.province_name,
            "senderCommuneCode": s.ward_code, "senderCommuneName": s.ward_name, "senderDistrictName": "",
            "senderMail": s.email or "",
            "receiverName": r.name, "receiverPhone": r.phone, "receiverAddress": r.address_line,
            "receiverProvinceCode": r.province_code, "receiverProvinceName": r.province_name,
            "receiverCommuneCode": r.ward_code, "receiverCommuneName": r.ward_name,
            "receiverDistrictName": r.legacy_district_name, "receiverEmail": r.email or "",
        }

    @staticmethod
    def _package(order: Order) -> dict[str, Any]:
        p = order.parcel
        return {"weight": p.weight_g, "length": p.length_cm or 0, "width": p.width_cm or 0, "height": p.height_cm or 0}

    async def quote(self, order: Order) -> list[QuoteOption]:
        r, s = order.recipient, order.sender
        reply = await self._call("POST", "/customer-partner/ServicesCharge", {
            "SenderProvinceCode": s.province_code, "SenderCommuneCode": s.ward_code,
            "ReceiverProvinceCode": r.province_code, "ReceiverCommuneCode": r.ward_code,
            "Weight": order.parcel.weight_g, "Length": order.parcel.length_cm or 0,
            "Width": order.parcel.width_cm or 0, "Height": order.parcel.height_cm or 0,
            "CodAmount": order.cod_vnd, "IsReceiverPayFreight": False}, safe=True)
        if not isinstance(reply, list):
            raise ProviderUnavailable(self.name, "ServicesCharge answered no service list")
        out = []
        for item in reply:
            service = SERVICES.get(str(item.get("serviceCode")))
            if service is not None:
                out.append(QuoteOption(self.name, service, int(item["totalFee"]), int(item.get("deliveryDays") or 3)))
        return out

    def _order(self, order_ref: str, o: dict[str, Any]) -> CarrierOrder:
        item = str(o.get("itemCode") or "")
        problem = s10.problem(item)
        if problem:  # the order may exist, but we cannot trust this answer: same number, same carrier again
            raise ProviderAmbiguous(self.name, f"item code is not a valid S10 identifier ({problem})")
        eta = o.get("expectedDelivery")
        return CarrierOrder(self.name, order_ref, item, str(o.get("originalID") or o.get("originalId") or ""),
                            int(o.get("totalFee") or 0), str(eta) if eta else None, str(o.get("orderStatus") or ""))

    async def create(self, order: Order) -> CarrierOrder:
        info = {**self._parties(order), **self._package(order),
                "serviceCode": SERVICE_CODES[order.service], "saleOrderCode": order.reference,
                "contentNote": f"{order.parcel.contents} — hồ sơ {order.dossier_id}"[:250],
                "isBroken": False, "vehicle": "BO", "sendType": "1", "deliveryTime": "N", "deliveryRequire": "1",
                "addonService": [{"code": "GTG021", "propValue": f"PROP0018:{order.cod_vnd}"}] if order.cod_vnd else []}
        reply = await self._call("POST", "/customer-partner/CreateOrder",
                                 {"orderCreationStatus": 1, "type": "GUI", "informationOrder": info}, safe=False)
        if not isinstance(reply, dict):
            raise ProviderAmbiguous(self.name, "CreateOrder answered no object")
        code = str(reply.get("status"))
        if code == "00":
            return self._order(order.reference, reply)
        if code == "99":
            raise ProviderUnavailable(self.name, f"status 99: {reply.get('message', '')}")
        raise ProviderRejected(self.name, REJECTIONS.get(code, PostalFailure.rejected),
                               f"status {code}: {reply.get('message', '')}")

    async def _get(self, query: str) -> dict[str, Any] | None:
        reply = await self._call("GET", f"/customer-partner/getOrder?{query}", safe=True)
        if not isinstance(reply, dict):
            raise ProviderUnavailable(self.name, "getOrder answered no object")
        if str(reply.get("status")) == "04":
            return None
        if str(reply.get("status")) != "00" or not isinstance(reply.get("order"), dict):
            raise ProviderUnavailable(self.name, f"getOrder status {reply.get('status')}")
        return dict(reply["order"])

    async def find(self, order: Order) -> CarrierOrder | None:
        try:
            found = await self._get(f"saleOrderCode={quote(order.reference)}")
        except ProviderUnavailable as exc:  # cannot tell: the caller re-sends under the same number
            raise ProviderAmbiguous(self.name, f"order lookup failed: {exc.detail}") from exc
        return self._order(order.reference, found) if found is not None else None

    async def cancel(self, shipment: CarrierOrder) -> None:
        reply = await self._call("POST", "/customer-partner/orderCancel", {"OriginalId": shipment.carrier_order_id},
                                 safe=False)
        if isinstance(reply, list) and reply and reply[0].get("caseId"):
            return
        if isinstance(reply, dict) and str(reply.get("status")) in ("20", "21"):
            raise NotCancellable(str(reply.get("message") or "picked up already"))
        raise ProviderAmbiguous(self.name, f"orderCancel answered {str(reply)[:80]}")

    async def events(self, tracking_number: str) -> list[CarrierEvent]:
        found = await self._get(f"itemCode={quote(tracking_number)}")
        if found is None:
            return []
        return [event_from({**e, "ItemCode": tracking_number}) for e in found.get("events") or []]

    async def feed(self, last_id: str, page_size: int) -> tuple[list[CarrierEvent], str, int]:
        """One page of the tracking feed after `last_id`: (events, the new cursor, documents read)."""
        reply = await self._call("GET", f"/tracking/orders?pagesize={page_size}&lastId={quote(last_id)}", safe=True)
        docs = ((reply or {}).get("_embedded") or {}).get("rh:doc") or []
        events = [event_from(d) for d in docs]
        cursor = str(docs[-1]["_id"]) if docs else last_id
        return events, cursor, len(docs)
