"""What `dvci dev` and `make demo` need for signing (the lead wires these in):

    env = ensure_pki(sandbox_url)        # the test PKI, made (or remade for another sandbox URL) when missing;
                                         # returns the env for the function processes; sets it in this process
    ensure_bucket(s3_client)             # the documents bucket in moto
    ok = await demo(session, broker_url, s3_endpoint)   # signs a sample decision, prints the verification
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

BUCKET = "dvci-documents"


def ensure_pki(sandbox_url: str, folder: str | None = None) -> dict[str, str]:
    from shared.integrations.signature import pki

    d = Path(folder or os.environ.get("DVCI_SIGN_PKI_DIR", ".dvci/pki")).resolve()
    manifest = d / "pki.json"
    current = json.loads(manifest.read_text()) if manifest.exists() else None
    if current is None or current.get("base_url") != sandbox_url.rstrip("/"):
        pki.init(d, base_url=sandbox_url, force=True)  # certificates carry the sandbox's OCSP/CRL URLs
    env = {"DVCI_SIGN_PKI_DIR": str(d), "DVCI_SIGN_BUCKET": os.environ.get("DVCI_SIGN_BUCKET", BUCKET)}
    os.environ.update(env)  # the in-process sandbox (TSA/OCSP/SmartCA/MySign) signs with it
    return env


def ensure_bucket(s3: Any, bucket: str = BUCKET) -> None:
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-southeast-1"})


async def demo(session: Any, base: str, s3_endpoint: str | None) -> bool:
    """Upload a sample decision, ask for a B-T signature with the agency seal (visible, Vietnamese), then a
    verification of the result; print both. True when signed and valid."""
    import boto3

    from dvci import client
    from shared.integrations.signature.samples import sample_pdf
    from shared.integrations.signature.verify import Report, SignatureReport, format_report

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="ap-southeast-1")
    ensure_bucket(s3)
    dossier = "000.00.01.H29-261127-0001"
    key = f"inbox/{dossier}/quyet-dinh-{uuid.uuid4().hex[:6]}.pdf"
    s3.put_object(Bucket=BUCKET, Key=key, Body=sample_pdf())
    ev = client.make_event("vn.gov.dvc.document.sign.requested", {
        "dossier_id": dossier, "document": {"s3_key": key, "content_type": "application/pdf"},
        "signer": {"method": "hsm", "key_label": "seal"}, "level": "B-T", "reason": "Phê duyệt kết quả",
        "location": "Tỉnh Thử Nghiệm", "appearance": {"page": -1, "box": [330, 40, 580, 120]}},
        source="/dvc/core/demo", extensions={"dossierid": dossier})
    print(f"\n[demo sign] -> vn.gov.dvc.document.sign.requested id={ev.id}", flush=True)
    await client.post_event(session, base, ev)
    outcomes = ("vn.gov.dvc.document.signed", "vn.gov.dvc.document.sign.failed")
    chain = await client.follow(session, base, ev, 30, outcomes)
    signed = [e for e in chain if e["type"] == "vn.gov.dvc.document.signed"]
    if not signed:
        print(f"[demo sign] no signature: {[e['type'] for e in chain]}", flush=True)
        return False
    data = signed[0]["data"]
    print(f"[demo sign] <- signed {data['output_key']} sha256={data['sha256'][:16]}… by {data['signer']['subject']}")
    vev = client.make_event("vn.gov.dvc.document.verify.requested",
                            {"s3_key": data["output_key"], "content_type": "application/pdf"}, source="/dvc/core/demo")
    await client.post_event(session, base, vev)
    chain = await client.follow(session, base, vev, 30, ("vn.gov.dvc.document.verified",))
    verified = [e for e in chain if e["type"] == "vn.gov.dvc.document.verified"]
    if not verified:
        return False
    v = verified[0]["data"]
    report = Report(v["valid"], [SignatureReport(**s) for s in v["signatures"]])
    print("[demo sign] <- verified:\n" + format_report(report), flush=True)
    return bool(v["valid"])
