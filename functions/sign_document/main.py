"""sign_document — PAdES (PDF) and XAdES (XML) signatures with the agency's key in a PKCS#11 HSM, or by an
official through VNPT SmartCA / Viettel MySign; timestamps, long-term validation, verification.

Takes:   vn.gov.dvc.document.sign.requested    (SignRequested)
         vn.gov.dvc.document.verify.requested  (VerifyRequested)
         dev.knative.sources.ping {job: sign-poll}  (remote transactions: status query, timeout)
Replies: vn.gov.dvc.document.signed | vn.gov.dvc.document.sign.pending | vn.gov.dvc.document.sign.failed
         vn.gov.dvc.document.verified
Emits:   vn.gov.dvc.document.signed | vn.gov.dvc.document.sign.failed to K_SINK (remote completion)
Routes:  POST /webhooks/smartca, POST /webhooks/mysign  (provider callbacks, authenticated)
Calls:   shared.integrations.signature (SigningService)
"""

from __future__ import annotations

from typing import Any

from functions.sign_document.models import (
    FAILED,
    PENDING,
    REQUESTED,
    SIGNED,
    VERIFIED,
    VERIFY_REQUESTED,
    DocumentSigned,
    DocumentVerified,
    SignFailed,
    SignPending,
    SignRequested,
    VerifyRequested,
)
from shared.integrations.signature.appearance import Appearance
from shared.integrations.signature.callbacks import RemoteCallbacks
from shared.integrations.signature.service import Failed, Pending, SignJob, default_service, signed_event
from shared.runtime import EventContext, FunctionApp, Reply
from shared.storage.health import redis_ready

app = FunctionApp("sign-document")
app.readiness_check(redis_ready)
app.emits(SIGNED, DocumentSigned)
app.emits(FAILED, SignFailed)


async def _emit(event_type: str, data: dict[str, Any], key: str, extensions: dict[str, str]) -> None:
    await app.emit(event_type, data, key=key, extensions=extensions)


@app.on(REQUESTED, SignRequested, replies={SIGNED: DocumentSigned, PENDING: SignPending, FAILED: SignFailed})
async def sign(ctx: EventContext, req: SignRequested) -> Reply:
    ap = req.appearance
    job = SignJob(req.dossier_id, req.document.s3_key, req.document.content_type, req.signer.method, req.level,
                  req.signer.key_label, req.signer.user_id, req.signer.credential_id, req.output_key, req.reason,
                  req.location, Appearance(ap.page, ap.box, ap.text) if ap is not None else None)
    ctx.log_fields.update(method=job.method, signature_level=job.level)
    outcome = await default_service().sign(ctx, job)
    if isinstance(outcome, Pending):
        return Reply(PENDING, SignPending(dossier_id=outcome.dossier_id, method=outcome.method,  # type: ignore[arg-type]
                                          transaction_id=outcome.transaction_id, expires_at=outcome.expires_at))
    if isinstance(outcome, Failed):
        return Reply(FAILED, SignFailed(dossier_id=outcome.dossier_id, reason=outcome.reason,  # type: ignore[arg-type]
                                        detail=outcome.detail))
    return Reply(SIGNED, DocumentSigned.model_validate(signed_event(outcome)))


@app.on(VERIFY_REQUESTED, VerifyRequested, replies={VERIFIED: DocumentVerified})
async def verify(ctx: EventContext, req: VerifyRequested) -> Reply:
    report = await default_service().verify(req.s3_key, req.content_type)
    return Reply(VERIFIED, DocumentVerified.model_validate(report.as_dict()))


callbacks = RemoteCallbacks(default_service, _emit)
callbacks.serve(app)  # POST /webhooks/smartca, /webhooks/mysign (shared/integrations/signature/callbacks.py)


@app.job("sign-poll")
async def sign_poll(ctx: EventContext) -> dict[str, int]:
    return await default_service().poll(_emit)


handle = app.entrypoint()
