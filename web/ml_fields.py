"""The ML-fields API of CONTRACT §4: read an opportunity's fields, queue a recalculation.

`GET` answers from the table on the worker that owns the opportunity's partition
(Faust's router forwards the request there); a worker without the table (the heavy
role) computes the fields from the store. Both compute at the moment of the request,
so the windows are right whenever it is asked.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from faust.exceptions import SameNode
from faust.web import Request, Response, View
from faust.web.exceptions import ServiceUnavailable

from processors.metrics import ML_RECALCULATIONS
from streams.models import RecalculateRequest
from tables.features import compute_features
from tables.state import rebuild_state, table_key
from web.auth import AuthError, Principal
from web.http import error

if TYPE_CHECKING:
    from collections.abc import Callable

    from processors.app import ProcessorsApp

__all__ = ["register_ml_field_views"]


def register_ml_field_views(app: ProcessorsApp, principal: Callable[[Request], Principal]) -> None:
    """Add the read and recalculate views to `app`."""

    async def opportunity(view: View, request: Request, opportunity_id: str) -> Any:
        try:
            who = principal(request)
        except AuthError as e:
            return error(view, 401, "unauthorized", str(e))
        shard = await app.deps.store.get(who.tenant_id, opportunity_id)
        if shard is None or shard.shard_type != "Opportunity":
            return error(view, 404, "not_found", f"no opportunity {opportunity_id}")
        return shard

    @app.page("/api/v1/opportunities/{opportunity_id}/ml-fields")
    class MlFieldsView(View):
        async def get(self, request: Request, opportunity_id: str) -> Response:
            shard = await opportunity(self, request, opportunity_id)
            if isinstance(shard, Response):
                return shard
            tenant_id = shard.tenant_id
            ml = getattr(app, "ml_fields", None)
            now = datetime.now(UTC)
            if ml is not None:
                key = table_key(tenant_id, opportunity_id).encode()
                try:
                    return await app.router.route_req(ml.table.name, key, self.web, request)
                except SameNode:
                    pass
                except ServiceUnavailable:
                    return error(self, 503, "unavailable", "the table is being rebalanced")
                state = await ml.state(tenant_id, opportunity_id)
                source = "table"
            else:
                state = await rebuild_state(
                    app.deps.store, app.deps.tenants, tenant_id, opportunity_id
                )
                source = "store"
            if state is None:
                return error(self, 404, "not_found", f"no opportunity {opportunity_id}")
            fields = compute_features(state, now, app.deps.tenants.of(tenant_id).zone)
            return self.json(
                {
                    "opportunityId": opportunity_id,
                    "asOf": now.isoformat(),
                    "source": source,
                    "mlFields": fields,
                    "writtenBack": {
                        "mlFieldsUpdatedAt": (
                            shard.ml_fields_updated_at.isoformat()
                            if shard.ml_fields_updated_at
                            else None
                        ),
                        "mlFieldsVersion": shard.ml_fields_version,
                    },
                }
            )

    @app.page("/api/v1/opportunities/{opportunity_id}/ml-fields/recalculate")
    class Recalculate(View):
        async def post(self, request: Request, opportunity_id: str) -> Response:
            shard = await opportunity(self, request, opportunity_id)
            if isinstance(shard, Response):
                return shard
            now = datetime.now(UTC)
            await app.deps.writer.recalculate(
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
