"""dead_letter — the broker's dead-letter sink: keeps every failed event for inspection and replay.

Takes:   any event (with knativeerrordest / knativeerrorcode / knativeerrordata)
Replies: nothing (202)
Jobs:    audit-seal (PingSource): chain the per-kind audit entries, seal the chain to S3 (shared/security/seal.py)
Calls:   shared.reliability.deadletters (DeadLetterStore in Redis); `dvci dlq` reads and replays it
"""

from __future__ import annotations

from shared.observability import metrics
from shared.reliability.deadletters import DeadLetterStore
from shared.runtime import CloudEvent, EventContext, FunctionApp
from shared.security import seal
from shared.storage.health import redis_ready
from shared.storage.redis import Keys, get_redis

app = FunctionApp("dead-letter")
app.readiness_check(redis_ready)
seal.register(app)  # the audit-seal job


@app.on_any
async def keep(ctx: EventContext, event: CloudEvent) -> None:
    letter = await DeadLetterStore(get_redis(), Keys(app.settings.env)).record(event)
    ctx.log_fields.update(letter=letter.id, error_code=letter.error_code)
    if metrics.ENABLED:
        metrics.DEAD_LETTERS.labels(metrics.bounded_type(event.type), str(letter.error_code or "none")).inc()


handle = app.entrypoint()
