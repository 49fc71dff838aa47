"""lgsp_sync — dossier status to the national portal (Cổng DVCQG) and the provincial LGSP, in order per
dossier, through outages (durable outbox); citizen lookup in the population database with an encrypted,
audited fallback cache.

Takes:   vn.gov.dvc.dossier.status.changed    (DossierStatusChanged)
         vn.gov.dvc.citizen.lookup.requested  (CitizenLookupRequested)
         dev.knative.sources.ping             (jobs: lgsp-drain each minute, lgsp-reconcile daily)
Replies: vn.gov.dvc.dossier.sync.result       (SyncResult: per target synced|queued|superseded|rejected)
         vn.gov.dvc.citizen.found | .not_found | .lookup.failed
Emits:   vn.gov.dvc.dossier.synced, vn.gov.dvc.dossier.sync.rejected to K_SINK (queued changes, later)
Calls:   shared.integrations.lgsp (Syncer, CitizenLookup)
"""

from __future__ import annotations

from functions.lgsp_sync.models import (
    CHANGED,
    FOUND,
    LOOKUP,
    LOOKUP_FAILED,
    NOT_FOUND,
    REJECTED,
    SYNC_RESULT,
    SYNCED,
    CitizenFound,
    CitizenLookupFailed,
    CitizenLookupRequested,
    CitizenNotFound,
    DossierStatusChanged,
    DossierSynced,
    SyncRejected,
    SyncResult,
    TargetResult,
)
from shared.integrations.lgsp.service import LgspService, default_service
from shared.runtime import EventContext, FunctionApp, Reply
from shared.storage.health import redis_ready

app = FunctionApp("lgsp-sync")
app.readiness_check(redis_ready)
app.emits(SYNCED, DossierSynced)
app.emits(REJECTED, SyncRejected)


async def _emit(type_: str, data: dict, key: str, dossier_id: str) -> None:
    await app.emit(type_, data, key=key, extensions={"dossierid": dossier_id, "partitionkey": dossier_id})


def service() -> LgspService:
    return default_service(app.settings.env, _emit)


@app.on(CHANGED, DossierStatusChanged, replies={SYNC_RESULT: SyncResult})
async def status_changed(ctx: EventContext, change: DossierStatusChanged) -> Reply:
    await service().admit(ctx)
    results = await service().syncer.sync_change(change.model_dump(mode="json", exclude_none=True))
    ctx.log_fields.update(version=change.version, **{f"sync_{r['target']}": r["state"] for r in results})
    return Reply(SYNC_RESULT, SyncResult(dossier_id=change.dossier_id, version=change.version,
                                         targets=[TargetResult(**r) for r in results]))


@app.on(LOOKUP, CitizenLookupRequested,
        replies={FOUND: CitizenFound, NOT_FOUND: CitizenNotFound, LOOKUP_FAILED: CitizenLookupFailed})
async def citizen_lookup(ctx: EventContext, req: CitizenLookupRequested) -> Reply:
    await service().admit(ctx)
    res = await service().citizens.lookup(
        req.citizen_id, purpose=req.purpose, requested_by=req.requested_by, full_name=req.full_name,
        birth_date=req.birth_date.isoformat() if req.birth_date else None, dossier_id=req.dossier_id,
        request_id=ctx.event.id)
    ctx.log_fields.update(outcome=res.reason or res.outcome, source=res.source)
    if res.outcome == "found" and res.record is not None:
        return Reply(FOUND, CitizenFound(**res.record, source=res.source or "live", as_of=res.as_of or ""))
    if res.outcome == "not_found":
        return Reply(NOT_FOUND, CitizenNotFound(citizen_id=req.citizen_id))
    return Reply(LOOKUP_FAILED, CitizenLookupFailed(citizen_id=req.citizen_id, reason=res.reason or "unavailable",  # type: ignore[arg-type]
                                                    detail=res.detail or ""))


@app.job("lgsp-drain")
async def drain(ctx: EventContext) -> dict[str, int]:
    syncer = service().syncer
    counts = await syncer.drain(budget_s=max(1.0, ctx.remaining() - 2.0))
    out = {f"{t}_{k}": v for t, c in counts.items() for k, v in c.items()}
    # a daily reconcile that outlived its tick carries on here
    more = await syncer.reconcile(budget_s=max(0.5, ctx.remaining() - 1.0), resume=True)
    return {**out, **{f"reconcile_{k}": v for k, v in more.items()}}


@app.job("lgsp-reconcile")
async def reconcile(ctx: EventContext) -> dict[str, int]:
    counts = await service().syncer.reconcile(budget_s=max(1.0, ctx.remaining() - 1.0))
    return {f"reconcile_{k}": v for k, v in counts.items()}


handle = app.entrypoint()
