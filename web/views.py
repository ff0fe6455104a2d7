"""The HTTP views of CONTRACT §4 that exist so far: health, ready, metrics, shards."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core.exceptions import ProcessorsError
from core.metrics import observe_consumer
from web.approval import register_approval_page
from web.auth import Principal, token_verifier
from web.deps import WebDeps
from web.http import authenticated, error, limit_of
from web.ml_fields import register_ml_field_views
from web.openapi import register_openapi
from web.suggestions import register_suggestion_views

__all__ = ["register_views"]

logger = logging.getLogger(__name__)

MAX_LIMIT = 500  # `limit` of the shard list; also in web/openapi.py (a unit test compares)
READY_CHECK_TIMEOUT = 3.0


def register_views(app: faust.App, deps: WebDeps) -> None:
    """Add every view to `app`'s web server."""
    settings = deps.settings

    verifier = token_verifier(settings)

    async def principal(request: Request) -> Principal:
        return await verifier.principal(request.headers.get("Authorization"))

    register_suggestion_views(app, deps, principal)
    register_approval_page(app)
    register_ml_field_views(app, deps, principal)
    register_openapi(app)

    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return self.json(
                {
                    "status": "healthy",
                    "service": settings.APP_ID,
                    "role": settings.CONSUMER_TYPE.value,
                    "agents": list(deps.agent_names),
                }
            )

    @app.page("/ready")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            checks = {
                "broker": await _check(deps.admin.ping()),
                "store": await _check(deps.store.ping()),
                "blobs": await _check(deps.blobs.ping()),
                "consumer": _consumer_check(deps.consumer_stalls()),
            }
            ready = all(c["ok"] for c in checks.values())
            return self.json(
                {"status": "ready" if ready else "not_ready", "checks": checks},
                status=200 if ready else 503,
            )

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            observe_consumer(app)
            # aiohttp refuses a content_type with parameters; the header carries them.
            return self.bytes(generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/api/v1/shards/{shard_id}")
    class ShardDetail(View):
        @authenticated(principal)
        async def get(self, request: Request, who: Principal, shard_id: str) -> Response:
            shard = await deps.store.get(who.tenant_id, shard_id)
            if shard is None:
                return error(self, 404, "not_found", f"no shard {shard_id}")
            return self.json(shard.to_doc())

    @app.page("/api/v1/shards")
    class ShardList(View):
        @authenticated(principal)
        async def get(self, request: Request, who: Principal) -> Response:
            query = request.query
            try:
                limit = limit_of(query, default=100, maximum=MAX_LIMIT)
            except ValueError as e:
                return error(self, 400, "bad_request", str(e))
            try:
                page = await deps.store.query(
                    who.tenant_id,
                    shard_type=query.get("shardType") or None,
                    limit=limit,
                    continuation=query.get("cursor") or None,
                )
            except ValueError:
                return error(self, 400, "bad_request", "cursor is not valid")
            return self.json(
                {"items": [s.to_doc() for s in page.items], "nextCursor": page.continuation}
            )


def _consumer_check(stalled: Sequence[str]) -> dict[str, Any]:
    """Not ok while the watchdog finds partitions with lag and no progress."""
    if not stalled:
        return {"ok": True}
    names = ", ".join(stalled)
    return {"ok": False, "error": f"no progress on {names}", "stalled": list(stalled)}


async def _check(probe: Any) -> dict[str, Any]:
    try:
        await asyncio.wait_for(probe, READY_CHECK_TIMEOUT)
    except (ProcessorsError, OSError, TimeoutError) as e:
        return {"ok": False, "error": str(e) or type(e).__name__}
    return {"ok": True}
