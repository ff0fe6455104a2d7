"""The ML-fields API of CONTRACT §4: read an opportunity's fields, queue a recalculation.

`GET` answers from the table on the worker that owns the opportunity's partition
(Faust's router forwards the request there); a worker without the table (the heavy
role) computes the fields from the store. Both compute at the moment of the request,
so the windows are right whenever it is asked.
"""

from __future__ import annotations

from datetime import UTC, datetime

import faust
from faust.exceptions import SameNode
from faust.web import Request, Response, View
from faust.web.exceptions import ServiceUnavailable

from core.metrics import ML_RECALCULATIONS
from shards.model import Shard
from streams.models import RecalculateRequest
from web.auth import Principal
from web.deps import WebDeps
from web.http import Authenticate, authenticated, error

__all__ = ["register_ml_field_views"]


def register_ml_field_views(app: faust.App, deps: WebDeps, authenticate: Authenticate) -> None:
    """Add the read and recalculate views to `app`."""
    ml = deps.ml_fields

    async def opportunity(who: Principal, opportunity_id: str) -> Shard | None:
        shard = await deps.store.get(who.tenant_id, opportunity_id)
        return shard if shard is not None and shard.shard_type == "Opportunity" else None

    @app.page("/api/v1/opportunities/{opportunity_id}/ml-fields")
    class MlFieldsView(View):
        @authenticated(authenticate)
        async def get(self, request: Request, who: Principal, opportunity_id: str) -> Response:
            shard = await opportunity(who, opportunity_id)
            if shard is None:
                return error(self, 404, "not_found", f"no opportunity {opportunity_id}")
            if ml.table_name is not None:
                key = ml.route_key(who.tenant_id, opportunity_id)
                try:
                    return await app.router.route_req(ml.table_name, key, self.web, request)
                except SameNode:
                    pass
                except ServiceUnavailable:
                    return error(self, 503, "unavailable", "the table is being rebalanced")
            now = datetime.now(UTC)
            found = await ml.fields(who.tenant_id, opportunity_id, now)
            if found is None:
                return error(self, 404, "not_found", f"no opportunity {opportunity_id}")
            fields, source = found
            updated_at = shard.ml_fields_updated_at
            return self.json(
                {
                    "opportunityId": opportunity_id,
                    "asOf": now.isoformat(),
                    "source": source,
                    "mlFields": fields,
                    "writtenBack": {
                        "mlFieldsUpdatedAt": updated_at.isoformat() if updated_at else None,
                        "mlFieldsVersion": shard.ml_fields_version,
                    },
                }
            )

    @app.page("/api/v1/opportunities/{opportunity_id}/ml-fields/recalculate")
    class Recalculate(View):
        @authenticated(authenticate)
        async def post(self, request: Request, who: Principal, opportunity_id: str) -> Response:
            shard = await opportunity(who, opportunity_id)
            if shard is None:
                return error(self, 404, "not_found", f"no opportunity {opportunity_id}")
            now = datetime.now(UTC)
            await deps.writer.recalculate(
                RecalculateRequest(
                    tenant_id=shard.tenant_id,
                    opportunity_shard_id=opportunity_id,
                    reason="api",
                    requested_at=now,
                )
            )
            ML_RECALCULATIONS.labels("api").inc()
            return self.json(
                {"opportunityId": opportunity_id, "queued": True, "requestedAt": now.isoformat()},
                status=202,
            )
