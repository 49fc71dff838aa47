"""Viettel Post (partner API v2, docs/postal.md). Client order number: `ORDER_NUMBER` in the request
(de-duplicated by the carrier); the waybill number comes back as `data.ORDER_NUMBER`. Viettel Post has
no status query: an unconfirmed create is resolved by re-sending under the same number; tracking arrives
only by webhook (`POST /webhooks/viettelpost`, shared secret in `Authorization`).

Assumptions beyond the reference (docs/postal.md): price `POST /order/getPriceAll` -> `[{MA_DV_CHINH,
GIA_CUOC, THOI_GIAN}]` (VTK standard, VCN express); errors `{status, error: true, message}` with status
201 address, 202 phone, 203 parcel, 204 token; cancel `POST /order/UpdateOrder {TYPE: 4, ORDER_NUMBER}`;
addresses carry the GSO codes in `*_PROVINCE` / `*_WARD` (district 0: no district level since 2025).
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared.integrations.postal import (
    CarrierEvent,
    CarrierOrder,
    NotCancellable,
    Order,
    PostalFailure,
    QuoteOption,
    Service,
)
from shared.integrations.postal._http import TokenCache, call_json
from shared.integrations.postal.settings import ViettelpostSettings
from shared.reliability.errors import ProviderAmbiguous, ProviderRejected, ProviderUnavailable

VN = ZoneInfo("Asia/Ho_Chi_Minh")
SERVICE_CODES = {"express": "VCN", "standard": "VTK"}
SERVICES: dict[str, Service] = {"VCN": "express", "VTK": "standard"}
REJECTIONS = {201: PostalFailure.invalid_address, 202: PostalFailure.invalid_phone, 203: PostalFailure.parcel_rejected}
_WAYBILL = re.compile(r"^\d{9,15}$")


def parse_time(text: str) -> int:
    """`dd/MM/yyyy HH:mm:ss` in Vietnam time -> epoch milliseconds."""
    return int(datetime.strptime(str(text).strip(), "%d/%m/%Y %H:%M:%S").replace(tzinfo=VN).timestamp() * 1000)


def parse_webhook(payload: Any) -> CarrierEvent:
    """A webhook body `{"DATA": {ORDER_NUMBER, ORDER_REFERENCE, ORDER_STATUSDATE, ORDER_STATUS, ...}}`."""
    if not isinstance(payload, dict) or not isinstance(payload.get("DATA"), dict):
        raise ValueError("expected {\"DATA\": {...}}")
    d = payload["DATA"]
    number, status, when = d.get("ORDER_NUMBER"), d.get("ORDER_STATUS"), d.get("ORDER_STATUSDATE")
    if not number or status is None or not when:
        raise ValueError("DATA needs ORDER_NUMBER, ORDER_STATUS and ORDER_STATUSDATE")
    location = d.get("LOCALION_CURRENTLY") or d.get("LOCATION_CURRENTLY")
    return CarrierEvent(carrier="viettelpost", tracking_number=str(number), carrier_status=str(int(status)),
                        description=str(d.get("STATUS_NAME") or d.get("NOTE") or ""), at_ms=parse_time(when),
                        location=str(location) if location else None,
                        reference=str(d.get("ORDER_REFERENCE") or "") or None)


class ViettelpostCarrier:
    name = "viettelpost"
    display = "Viettel Post"

    def __init__(self, settings: ViettelpostSettings | None = None):
        self.settings = settings or ViettelpostSettings()
        self.tokens = TokenCache(self._login)

    async def _login(self) -> tuple[str, float]:
        s = self.settings
        status, reply = await call_json(self.name, "POST", f"{s.url}/user/Login",
                                        {"USERNAME": s.username, "PASSWORD": s.password.get_secret_value()},
                                        timeout_s=s.timeout_s, safe=True)
        token = ((reply or {}).get("data") or {}).get("token") if isinstance(reply, dict) else None
        if status != 200 or not token:
            raise ProviderUnavailable(self.name, f"login refused (HTTP {status})")
        return str(token), 3600.0

    async def _call(self, path: str, payload: Any, *, safe: bool) -> Any:
        for _ in range(2):
            token = await self.tokens.get()
            status, reply = await call_json(self.name, "POST", f"{self.settings.url}{path}", payload,
                                            headers={"Token": token}, timeout_s=self.settings.timeout_s, safe=safe)
            if status == 401 or (isinstance(reply, dict) and reply.get("status") == 204):
                self.tokens.invalidate(token)
                continue
            if status >= 400:
                raise ProviderUnavailable(self.name, f"HTTP {status}")
            return reply
        raise ProviderUnavailable(self.name, "token refused after a fresh login")

    @staticmethod
    def _places(order: Order) -> dict[str, Any]:
        s, r = order.sender, order.recipient
        return {"SENDER_FULLNAME": s.name, "SENDER_ADDRESS": s.one_line(), "SENDER_PHONE": s.phone,
                "SENDER_EMAIL": s.email or "", "SENDER_PROVINCE": int(s.province_code), "SENDER_DISTRICT": 0,
                "SENDER_WARD": int(s.ward_code),
                "RECEIVER_FULLNAME": r.name, "RECEIVER_ADDRESS": r.one_line(), "RECEIVER_PHONE": r.phone,
                "RECEIVER_EMAIL": r.email or "", "RECEIVER_PROVINCE": int(r.province_code), "RECEIVER_DISTRICT": 0,
                "RECEIVER_WARD": int(r.ward_code)}

    async def quote(self, order: Order) -> list[QuoteOption]:
        p = self._places(order)
        reply = await self._call("/order/getPriceAll", {
            "SENDER_PROVINCE": p["SENDER_PROVINCE"], "SENDER_DISTRICT": 0, "SENDER_WARD": p["SENDER_WARD"],
            "RECEIVER_PROVINCE": p["RECEIVER_PROVINCE"], "RECEIVER_DISTRICT": 0, "RECEIVER_WARD": p["RECEIVER_WARD"],
            "PRODUCT_TYPE": "HH", "PRODUCT_WEIGHT": order.parcel.weight_g, "PRODUCT_PRICE": 0,
            "MONEY_COLLECTION": order.cod_vnd, "TYPE": 1}, safe=True)
        if not isinstance(reply, list):
            raise ProviderUnavailable(self.name, "getPriceAll answered no service list")
        out = []
        for item in reply:
            service = SERVICES.get(str(item.get("MA_DV_CHINH")))
            if service is not None:
                hours = float(re.sub(r"[^\d.]", "", str(item.get("THOI_GIAN") or "72")) or 72)
                out.append(QuoteOption(self.name, service, int(item["GIA_CUOC"]), max(1, math.ceil(hours / 24))))
        return out

    async def create(self, order: Order) -> CarrierOrder:
        parcel = order.parcel
        reply = await self._call("/order/createOrder", {
            "ORDER_NUMBER": order.reference, "GROUPADDRESS_ID": 0, "CUS_ID": 0, "DELIVERY_DATE": "",
            **self._places(order),
            "PRODUCT_NAME": parcel.contents[:150], "PRODUCT_DESCRIPTION": f"Hồ sơ {order.dossier_id}",
            "PRODUCT_QUANTITY": 1, "PRODUCT_PRICE": 0, "PRODUCT_WEIGHT": parcel.weight_g,
            "PRODUCT_LENGTH": parcel.length_cm or 0, "PRODUCT_WIDTH": parcel.width_cm or 0,
            "PRODUCT_HEIGHT": parcel.height_cm or 0, "PRODUCT_TYPE": "HH",
            "ORDER_PAYMENT": 3 if order.cod_vnd else 1, "ORDER_SERVICE": SERVICE_CODES[order.service],
            "ORDER_SERVICE_ADD": "", "ORDER_NOTE": f"Hồ sơ {order.dossier_id}", "MONEY_COLLECTION": order.cod_vnd,
            "LIST_ITEM": [{"PRODUCT_NAME": parcel.contents[:150], "PRODUCT_PRICE": 0,
                           "PRODUCT_WEIGHT": parcel.weight_g, "PRODUCT_QUANTITY": 1}]}, safe=False)
        if not isinstance(reply, dict):
            raise ProviderAmbiguous(self.name, "createOrder answered no object")
        if reply.get("status") == 200 and not reply.get("error") and isinstance(reply.get("data"), dict):
            data = reply["data"]
            number = str(data.get("ORDER_NUMBER") or "")
            if not _WAYBILL.match(number):
                raise ProviderAmbiguous(self.name, "waybill number is not 9-15 digits")
            eta = data.get("EXPECTED_DELIVERY_DATE")
            return CarrierOrder(self.name, order.reference, number, number, int(data.get("MONEY_TOTAL") or 0),
                                str(eta) if eta else None)
        code = int(reply.get("status") or 0)
        if code >= 500:
            raise ProviderUnavailable(self.name, f"status {code}: {reply.get('message', '')}")
        raise ProviderRejected(self.name, REJECTIONS.get(code, PostalFailure.rejected),
                               f"status {code}: {reply.get('message', '')}")

    async def find(self, order: Order) -> CarrierOrder | None:
        raise ProviderAmbiguous(self.name, "no order query: re-send under the same ORDER_NUMBER")

    async def cancel(self, shipment: CarrierOrder) -> None:
        reply = await self._call("/order/UpdateOrder", {"TYPE": 4, "ORDER_NUMBER": shipment.tracking_number,
                                                        "NOTE": "Hủy theo yêu cầu"}, safe=False)
        if isinstance(reply, dict) and reply.get("status") == 200 and not reply.get("error"):
            return
        if isinstance(reply, dict) and reply.get("error"):
            raise NotCancellable(str(reply.get("message") or "not cancellable"))
        raise ProviderAmbiguous(self.name, "UpdateOrder answered no object")

    async def events(self, tracking_number: str) -> list[CarrierEvent]:
        return []  # webhooks only
