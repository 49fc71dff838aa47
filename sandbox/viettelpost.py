"""Viettel Post simulator: partner API v2 (docs/postal.md) under `/viettelpost/v2/`, pushing tracking
webhooks `{"DATA": {...}, "TOKEN"}` with the shared secret in `Authorization` to `callback_url` (set with
`POST /viettelpost/_sandbox/config {"callback_url": ...}`). Assumed shapes: shared/integrations/postal/
viettelpost.py and docs/postal.md.

    POST /viettelpost/v2/user/Login          {USERNAME, PASSWORD} -> {status: 200, error: false, data: {token}}
    POST /viettelpost/v2/order/getPriceAll   (header Token)       -> [{MA_DV_CHINH, TEN_DICHVU, GIA_CUOC, THOI_GIAN}]
    POST /viettelpost/v2/order/createOrder   {ORDER_NUMBER, ...}  -> {status: 200, error: false, data: {ORDER_NUMBER,
         MONEY_TOTAL, ...}}; the same ORDER_NUMBER again answers the same waybill
    POST /viettelpost/v2/order/UpdateOrder   {TYPE: 4, ORDER_NUMBER} -> cancel, or {error: true} once picked up
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from typing import Any

import orjson
from aiohttp import web

from sandbox.base import Handler
from sandbox.postal_base import VN, PostalSimulator
from shared.security.webhooks import WebhookAuth, signed_headers

_PHONE = re.compile(r"^0\d{9,10}$")
_SERVICE = {"VCN": "express", "VTK": "standard"}
_HOURS = {"VCN": 24, "VTK": 72}
NAMES = {"-100": "Đơn hàng mới tạo", "100": "Tiếp nhận đơn hàng", "105": "Bưu tá đã nhận hàng",
         "200": "Nhận từ bưu tá - bưu cục gốc", "300": "Khai thác đi", "400": "Nhận bảng kê đến",
         "500": "Giao bưu tá đi phát", "501": "Đã giao hàng", "502": "Chuyển hoàn bưu cục gốc",
         "504": "Hoàn thành công - chuyển trả người gửi", "107": "Đối tác yêu cầu hủy qua API",
         "506": "Tồn - khách hàng nghỉ, không có nhà"}


def reply(status: int, message: str, data: Any = None, error: bool = False) -> web.Response:
    return web.json_response({"status": status, "error": error, "message": message, "data": data})


class ViettelpostSimulator(PostalSimulator):
    name = "viettelpost"
    progress = ("-100", "100", "105", "200", "300", "400", "500", "501")
    pickup_codes = frozenset(("105", "200", "202", "300", "301", "302", "303", "320", "400", "500", "501"))

    def __init__(self, *, username: str = "sandbox", password: str = "sandbox", **kw: Any):
        super().__init__(**kw)
        self.username, self.password = username, password
        self.tokens: set[str] = set()
        self.prices = {"standard": 20000, "express": 36000}
        self.base = int(time.time()) % 10**6 * 100

    def reset(self) -> None:
        super().reset()
        self.prices = {"standard": 20000, "express": 36000}

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [("POST", "/v2/user/Login", self.login), ("POST", "/v2/order/getPriceAll", self.price),
                ("POST", "/v2/order/createOrder", self.create), ("POST", "/v2/order/UpdateOrder", self.update)]

    def new_tracking_number(self) -> str:
        number = f"1{(self.base + self.serial) % 10**10:010d}"
        return number + "X" if self.invalid_numbers else number

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Token", "") in self.tokens

    async def login(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.receive(None, {"path": "Login"})
        if body.get("USERNAME") != self.username or body.get("PASSWORD") != self.password:
            return reply(205, "Sai tên đăng nhập hoặc mật khẩu", error=True)
        token = f"vtp-{len(self.tokens) + 1:06d}"
        self.tokens.add(token)
        return reply(200, "OK", {"token": token, "userId": 1, "partner": 1})

    async def price(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return reply(204, "Token không hợp lệ", error=True)
        body = await request.json()
        self.receive(None, {"path": "getPriceAll"})
        extra = max(0, (int(body.get("PRODUCT_WEIGHT") or 0) - 500 + 499) // 500) * 2500
        return web.json_response([{"MA_DV_CHINH": code, "TEN_DICHVU": name, "THOI_GIAN": f"{_HOURS[code]} giờ",
                                   "GIA_CUOC": self.prices[_SERVICE[code]] + extra}
                                  for code, name in (("VCN", "Chuyển phát nhanh"), ("VTK", "Tiết kiệm"))])

    async def create(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return reply(204, "Token không hợp lệ", error=True)
        try:
            body = orjson.loads(await request.read())
            ref = str(body["ORDER_NUMBER"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.receive(None, {"path": "createOrder", "error": "malformed"})
            return reply(400, "Dữ liệu không hợp lệ", error=True)
        self.receive(ref, {"path": "createOrder", "service": body.get("ORDER_SERVICE")})
        if not body.get("RECEIVER_PROVINCE") or not body.get("RECEIVER_WARD"):
            return reply(201, "Địa chỉ người nhận không hợp lệ", error=True)
        if not _PHONE.match(str(body.get("RECEIVER_PHONE", ""))):
            return reply(202, "Số điện thoại người nhận không hợp lệ", error=True)
        weight = int(body.get("PRODUCT_WEIGHT") or 0)
        if weight > 50000:
            return reply(203, "Khối lượng vượt quá giới hạn", error=True)
        code = str(body.get("ORDER_SERVICE") or "VTK")
        if code not in _SERVICE:
            return reply(206, "Dịch vụ không hợp lệ", error=True)
        fee = self.prices[_SERVICE[code]] + max(0, (weight - 500 + 499) // 500) * 2500
        order, _ = self.create_order(ref, {"service": code, "cod": int(body.get("MONEY_COLLECTION") or 0)}, fee)
        eta = datetime.fromtimestamp(order["accepted_at"], VN) + timedelta(hours=_HOURS[code])
        return reply(200, "OK", {"ORDER_NUMBER": order["tracking_number"], "ORDER_REFERENCE": ref,
                                 "MONEY_COLLECTION": order["cod"], "MONEY_TOTAL": fee, "MONEY_TOTALFEE": fee,
                                 "KPI_HT": _HOURS[code], "EXPECTED_DELIVERY_DATE": eta.isoformat(timespec="seconds")})

    async def update(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return reply(204, "Token không hợp lệ", error=True)
        body = await request.json()
        self.receive(None, {"path": "UpdateOrder"})
        order = self.messages.get(self.by_tracking.get(str(body.get("ORDER_NUMBER")), ""))
        if order is None:
            return reply(200, "Không tìm thấy vận đơn", error=True)
        if int(body.get("TYPE") or 0) != 4:
            return reply(200, "OK")
        if not self.cancellable(order):
            return reply(200, "Vận đơn đã được lấy, không thể hủy", error=True)
        order["cancelled"] = True
        await self.report(order["tracking_number"], "107", time.time())
        return reply(200, "OK")

    def webhook_body(self, number: str, event: dict[str, Any]) -> dict[str, Any]:
        order = self.messages.get(self.by_tracking.get(number, ""), {})
        return {"DATA": {"ORDER_NUMBER": number, "ORDER_REFERENCE": order.get("reference", ""),
                         "ORDER_STATUSDATE": self.local(event["at"]), "ORDER_STATUS": int(event["code"]),
                         "STATUS_NAME": event["description"] or NAMES.get(event["code"], event["code"]),
                         "LOCALION_CURRENTLY": event["location"] or "Bưu cục Hà Nội", "NOTE": "",
                         "MONEY_COLLECTION": order.get("cod", 0), "MONEY_TOTAL": order.get("fee", 0),
                         "PRODUCT_WEIGHT": 0, "ORDER_SERVICE": order.get("service", "")},
                "TOKEN": self.webhook_secret}

    async def publish(self, number: str, event: dict[str, Any]) -> Any:
        """Push the event to the webhook (if one is set); returns the webhook's HTTP status."""
        import aiohttp

        body = orjson.dumps(self.webhook_body(number, event))
        self.pushes.append({"tracking_number": number, "code": event["code"]})
        url = self.callback_url or self.receipts.callback_url  # set by /_sandbox/config or /_sandbox/receipts
        if not url:
            return None
        auth = WebhookAuth(secret=self.webhook_secret, scheme="token", header="authorization")
        try:
            async with aiohttp.ClientSession() as s, s.post(
                    url, data=body,
                    headers={"content-type": "application/json", **signed_headers(auth, body)}) as r:
                return r.status
        except aiohttp.ClientError:
            return None
