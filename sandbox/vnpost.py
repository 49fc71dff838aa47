"""VietnamPost simulator: the MyVNP API (docs/postal.md) with NGSP's paged tracking feed, under
`/vnpost/`. Assumed shapes: shared/integrations/postal/vnpost.py and docs/postal.md.

    POST /vnpost/customer-partner/GetAccessToken  {username, password}     -> {token, expiresIn}
    POST /vnpost/customer-partner/ServicesCharge  (header token)           -> [{serviceCode, totalFee, deliveryDays}]
    POST /vnpost/customer-partner/CreateOrder     {orderCreationStatus, type, informationOrder: {..., saleOrderCode}}
         -> {status: "00", originalID, itemCode (S10), totalFee, expectedDelivery}; the same saleOrderCode again
            answers the same order (one order per client order number)
    GET  /vnpost/customer-partner/getOrder?saleOrderCode=|itemCode=     -> {status: "00", order} | {status: "04"}
    POST /vnpost/customer-partner/orderCancel     {OriginalId}             -> [{caseId}] | {status: "20"}
    GET  /vnpost/tracking/orders?pagesize=&lastId=  -> {"_embedded": {"rh:doc": [...]}, "_returned", "_size"}
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from typing import Any

import orjson
from aiohttp import web

from sandbox.base import Handler
from sandbox.postal_base import VN, PostalSimulator, problem
from shared.integrations.postal import s10

_PHONE = re.compile(r"^0\d{9,10}$")
_DAYS = {"EMS": 1, "BK": 3}
_SERVICE = {"EMS": "express", "BK": "standard"}


class VnpostSimulator(PostalSimulator):
    name = "vnpost"
    progress = ("1", "2", "4", "6", "7", "10", "11", "12", "14")
    pickup_codes = frozenset(("6", "7", "10", "11", "12", "13", "14", "15"))

    def __init__(self, *, username: str = "sandbox", password: str = "sandbox", **kw: Any):
        super().__init__(**kw)
        self.username, self.password = username, password
        self.tokens: set[str] = set()
        self.feed: list[dict[str, Any]] = []
        self.base = int(time.time()) % 10**7 * 10

    def reset(self) -> None:
        super().reset()
        self.feed.clear()

    def routes(self) -> list[tuple[str, str, Handler]]:
        base = "/customer-partner"
        return [("POST", f"{base}/GetAccessToken", self.token), ("POST", f"{base}/ServicesCharge", self.charge),
                ("POST", f"{base}/CreateOrder", self.create), ("GET", f"{base}/getOrder", self.get_order),
                ("POST", f"{base}/orderCancel", self.cancel), ("GET", "/tracking/orders", self.tracking)]

    def new_tracking_number(self) -> str:
        number = s10.make("EB", (self.base + self.serial) % 10**8)
        if self.invalid_numbers:
            number = number[:10] + str((int(number[10]) + 1) % 10) + number[11:]  # wrong check digit
        return number

    async def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("token", "") in self.tokens

    async def token(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.receive(None, {"path": "GetAccessToken"})
        if body.get("username") != self.username or body.get("password") != self.password:
            return web.json_response({"message": "Sai tên đăng nhập hoặc mật khẩu"}, status=401)
        token = f"vnp-{len(self.tokens) + 1:06d}"
        self.tokens.add(token)
        return web.json_response({"token": token, "expiresIn": 86400})

    async def charge(self, request: web.Request) -> web.Response:
        if not await self._authorised(request):
            return web.json_response({"message": "token"}, status=401)
        body = await request.json()
        self.receive(None, {"path": "ServicesCharge"})
        weight = int(body.get("Weight") or 0)
        extra = max(0, (weight - 500 + 499) // 500) * 3000
        return web.json_response([{"serviceCode": code, "serviceName": name, "deliveryDays": _DAYS[code],
                                   "totalFee": self.prices[_SERVICE[code]] + extra}
                                  for code, name in (("EMS", "Chuyển phát nhanh EMS"), ("BK", "Bưu kiện"))])

    def _order_json(self, o: dict[str, Any]) -> dict[str, Any]:
        eta = datetime.fromtimestamp(o["accepted_at"], VN) + timedelta(days=_DAYS[o["serviceCode"]])
        return {"status": "00", "message": "Thành công", "originalID": o["original_id"],
                "itemCode": o["tracking_number"],
                "totalFee": o["fee"], "expectedDelivery": eta.isoformat(timespec="seconds"), "orderStatus": o["status"],
                "saleOrderCode": o["reference"]}

    async def create(self, request: web.Request) -> web.Response:
        if not await self._authorised(request):
            return web.json_response({"message": "token"}, status=401)
        try:
            body = orjson.loads(await request.read())
            info = body["informationOrder"]
            ref = str(info["saleOrderCode"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.receive(None, {"path": "CreateOrder", "error": "malformed"})
            return problem("malformed CreateOrder")
        self.receive(ref, {"path": "CreateOrder", "service": info.get("serviceCode")})
        codes = (str(info.get("receiverProvinceCode", "")), str(info.get("receiverCommuneCode", "")))
        if not all(c.isdigit() for c in codes):
            return web.json_response({"status": "10", "message": "Địa chỉ người nhận không hợp lệ"})
        if not _PHONE.match(str(info.get("receiverPhone", ""))):
            return web.json_response({"status": "11", "message": "Số điện thoại người nhận không hợp lệ"})
        if int(info.get("weight") or 0) > 30000:
            return web.json_response({"status": "12", "message": "Khối lượng vượt quá 30 kg"})
        code = str(info.get("serviceCode") or "BK")
        if code not in _SERVICE:
            return web.json_response({"status": "13", "message": "Dịch vụ không hợp lệ"})
        fee = self.prices[_SERVICE[code]] + max(0, (int(info.get("weight") or 0) - 500 + 499) // 500) * 3000
        order, _ = self.create_order(ref, {"serviceCode": code, "original_id": f"VNP{self.serial:010d}",
                                           "cod": _cod(info)}, fee)
        return web.json_response(self._order_json(order))

    async def get_order(self, request: web.Request) -> web.Response:
        if not await self._authorised(request):
            return web.json_response({"message": "token"}, status=401)
        ref = request.query.get("saleOrderCode") or self.by_tracking.get(request.query.get("itemCode", ""), "")
        self.receive(None, {"path": "getOrder"})
        order = self.messages.get(ref)
        if order is None:
            return web.json_response({"status": "04", "message": "Không tìm thấy đơn hàng"})
        number = order["tracking_number"]
        events = [self._doc(number, e, i) for i, e in enumerate(self.events[number])]
        return web.json_response({"status": "00", "order": {**self._order_json(order), "events": events}})

    async def cancel(self, request: web.Request) -> web.Response:
        if not await self._authorised(request):
            return web.json_response({"message": "token"}, status=401)
        body = await request.json()
        self.receive(None, {"path": "orderCancel"})
        order = next((o for o in self.messages.values() if o["original_id"] == body.get("OriginalId")), None)
        if order is None:
            return web.json_response({"status": "04", "message": "Không tìm thấy đơn hàng"})
        if not self.cancellable(order):
            return web.json_response({"status": "20", "message": "Bưu gửi đã được nhận, không thể hủy"})
        order["cancelled"] = True
        await self.report(order["tracking_number"], "9", time.time(), "Hủy nhận hàng")
        return web.json_response([{"caseId": f"CASE{self.serial:08d}"}])

    def _doc(self, number: str, e: dict[str, Any], seq: int) -> dict[str, Any]:
        return {"_id": e.get("id", f"{number}-{seq}"), "CustomerCode": "DVCSANDBOX",
                "OrderNumber": self.by_tracking.get(number, ""), "ItemCode": number, "StatusCode": int(e["code"]),
                "StatusMessage": e["description"] or f"Trạng thái {e['code']}",
                "EventTime": datetime.fromtimestamp(e["at"], VN).isoformat(timespec="milliseconds"),
                "POSID": e["location"] or "100000", "Notes": ""}

    async def publish(self, number: str, event: dict[str, Any]) -> Any:
        return {"feed_id": event["id"]}  # add_event put it in the feed already

    def add_event(self, number: str, code: str, at: float, description: str = "", location: str = "") -> dict[str, Any]:
        event = super().add_event(number, code, at, description, location)
        if "id" not in event:
            event["id"] = f"{len(self.feed) + 1:012d}"
            self.feed.append(self._doc(number, event, len(self.feed)))
        return event

    async def tracking(self, request: web.Request) -> web.Response:
        if not await self._authorised(request):
            return web.json_response({"message": "token"}, status=401)
        size = max(1, min(1000, int(request.query.get("pagesize", "100"))))
        last = request.query.get("lastId", "")
        self.receive(None, {"path": "tracking", "lastId": last})
        docs = [d for d in self.feed if d["_id"] > last][:size]
        return web.json_response({"_embedded": {"rh:doc": docs}, "_returned": len(docs), "_size": len(self.feed),
                                  "_total_pages": (len(self.feed) + size - 1) // size})


def _cod(info: dict[str, Any]) -> int:
    for addon in info.get("addonService") or []:
        value = str(addon.get("propValue", ""))
        if ":" in value:
            return int(value.split(":", 1)[1] or 0)
    return 0
