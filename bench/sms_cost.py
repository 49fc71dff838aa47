"""What cost routing and unsigned text save: 1,000 realistic DVC notifications priced with the catalogue
(shared/integrations/sms/providers.yaml), against one provider sending Unicode text. Prints the table."""

from __future__ import annotations

import random

from shared.integrations.sms import encoding
from shared.integrations.sms.catalogue import load
from shared.integrations.sms.content import prepare

# subscriber shares, roughly the Vietnamese market (Viettel ~55%, VinaPhone ~20%, MobiFone ~20%, others ~5%)
CARRIERS = [("viettel", 0.55), ("vinaphone", 0.20), ("mobifone", 0.20), ("vietnamobile", 0.03), ("gmobile", 0.01),
            ("itelecom", 0.01)]
NOTIFICATIONS = [
    ("transactional", "Hồ sơ {d} của ông/bà đã được tiếp nhận ngày 27/11/2026. Tra cứu tại dichvucong.gov.vn"),
    ("transactional", "Hồ sơ {d} đã có kết quả. Mời ông/bà nhận kết quả tại Bộ phận Một cửa UBND tỉnh."),
    ("transactional", "Hồ sơ {d} cần bổ sung: bản sao CCCD, giấy xác nhận cư trú. Hạn bổ sung: 05/12/2026. "
                      "Chi tiết xem tại Cổng Dịch vụ công quốc gia."),
    ("transactional", "Kết quả hồ sơ {d} đã được gửi qua bưu chính công ích, mã vận đơn EB123456789VN."),
    ("transactional", "Đề nghị ông/bà nộp lệ phí 50.000 đồng cho hồ sơ {d} trước ngày 30/11/2026."),
    ("otp", "Mã OTP xác thực tài khoản Dịch vụ công của bạn là {otp}. Mã có hiệu lực trong 5 phút."),
]


def main(n: int = 1000, seed: int = 2026) -> None:
    cat = load()
    rng = random.Random(seed)
    names, weights = zip(*CARRIERS, strict=True)
    single = routed = 0.0
    seg_u = seg_s = 0
    by_provider: dict[str, int] = {}
    for i in range(n):
        carrier = rng.choices(names, weights)[0]
        category, template = rng.choice(NOTIFICATIONS)
        text = template.format(d=f"000.00.01.H29-261127-{i:04d}", otp=f"{rng.randrange(10**6):06d}")
        unicode_segments = encoding.segments(text, "ucs2")
        single += unicode_segments * cat.price("viettel", "ucs2", carrier, category)
        seg_u += unicode_segments
        p = prepare(text=text, template_id=None, params=None, category=category, brandname=None, unsigned=None)
        best = cat.ranked(list(cat.order), p.encoding, carrier, category, p.segments)[0]
        routed += p.segments * cat.price(best, p.encoding, carrier, category)
        seg_s += p.segments
        by_provider[best] = by_provider.get(best, 0) + 1
    print(f"{n} DVC notifications (seed {seed}), prices from providers.yaml")
    print(f"  one provider (Viettel), Unicode text : {seg_u:5d} segments, {single:12,.0f} VND")
    print(f"  cheapest route + unsigned text       : {seg_s:5d} segments, {routed:12,.0f} VND")
    print(f"  saving                               : {single - routed:12,.0f} VND ({1 - routed / single:.1%})")
    print(f"  routes: {by_provider}")


if __name__ == "__main__":
    main()
