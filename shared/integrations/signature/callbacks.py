"""What sign_document serves besides events: the remote signing services' callbacks (every signer of the
registry with a webhook: SmartCA, MySign), authenticated by the webhook module, completing the pending
transaction (embed the CMS, timestamp, upload, emit `signed` / `sign.failed` to K_SINK)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from shared.integrations.registry import ProviderSpec
from shared.integrations.signature.providers import REGISTRY
from shared.reliability.errors import ProviderError
from shared.runtime.problem import problem_response
from shared.security.webhooks import WebhookAuth, WebhookRefused, read_verified, refused_response

log = logging.getLogger("dvci.signing")
Emit = Callable[[str, dict[str, Any], str, dict[str, str]], Awaitable[None]]


class RemoteCallbacks:
    def __init__(self, service: Callable[[], Any], emit: Emit):
        """`service`: the process's SigningService (per event loop); `emit`: to K_SINK."""
        self.service, self.emit = service, emit
        self.webhooks: dict[str, tuple[ProviderSpec, WebhookAuth]] = {
            spec.webhook.path: (spec, spec.webhook_auth()) for spec in REGISTRY.webhooks() if spec.webhook}

    def serve(self, app: Any) -> None:
        for path in self.webhooks:
            app.route(path)(self._route(path))

    def _route(self, path: str) -> Callable[[Request], Awaitable[Response]]:
        async def route(request: Request) -> Response:
            return await self.callback(path, request)

        return route

    async def callback(self, path: str, request: Request) -> Response:
        """401/413 unauthenticated, 400 unreadable, 503 when finishing failed (the provider or `sign-poll`
        tries again), 409 while another instance finishes the same transaction, else the outcome."""
        spec, auth = self.webhooks[path]
        try:
            body = await read_verified(request, auth)
        except WebhookRefused as exc:
            log.warning("signing callback refused", extra={"provider": spec.name, "reason": exc.reason})
            return refused_response(exc, f"{spec.name} callback")
        service = self.service()
        try:
            tx, result = service.remotes[spec.name].parse_webhook(body)
        except (ValueError, KeyError, TypeError, AttributeError, ProviderError) as exc:  # authentic, malformed
            return problem_response(400, "Unreadable callback", str(exc)[:200])
        try:
            outcome = await service.complete(tx, result, self.emit)
        except Exception as exc:  # TSA/S3 down while finishing: the provider (or the poll) tries again
            log.warning("remote signature not completed yet", extra={"provider": spec.name,
                                                                     "error": type(exc).__name__})
            return problem_response(503, "Not completed yet", type(exc).__name__, retry_after=5)
        if outcome == "busy":
            return Response(status_code=409, headers={"retry-after": "1"})
        return Response(orjson.dumps({"transaction_id": tx, "outcome": outcome}), media_type="application/json")
