"""The suggested-links API of CONTRACT §4: list, approve, reject."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import faust
from faust.web import Request, Response, View

from shards.links import write_links
from shards.model import Link
from shards.suggestions import SuggestedLink
from streams.models import LinkEvent
from web.auth import Principal
from web.deps import WebDeps
from web.http import Authenticate, authenticated, error, limit_of

__all__ = ["register_suggestion_views"]

MAX_LIMIT = 200
STATUSES = ("pending_review", "approved", "rejected")


def register_suggestion_views(app: faust.App, deps: WebDeps, authenticate: Authenticate) -> None:
    """Add the list, approve and reject views to `app`."""

    @app.page("/api/v1/suggested-links")
    class SuggestedLinks(View):
        @authenticated(authenticate)
        async def get(self, request: Request, who: Principal) -> Response:
            query = request.query
            status = query.get("status") or None
            if status is not None and status not in STATUSES:
                return error(self, 400, "bad_request", f"status must be one of {STATUSES}")
            try:
                limit = limit_of(query, default=50, maximum=MAX_LIMIT)
            except ValueError as e:
                return error(self, 400, "bad_request", str(e))
            try:
                items, cursor = await deps.store.list_suggestions(
                    who.tenant_id,
                    status=status,
                    target_shard_id=query.get("targetShardId") or None,
                    source_shard_type=query.get("sourceShardType") or None,
                    limit=limit,
                    continuation=query.get("cursor") or None,
                )
            except ValueError:
                return error(self, 400, "bad_request", "cursor is not valid")
            return self.json({"items": [i.to_doc() for i in items], "nextCursor": cursor})

    async def decide(
        view: View, request: Request, who: Principal, suggestion_id: str, status: str
    ) -> Response:
        try:
            body = await _body(request)
        except ValueError as e:
            return error(view, 400, "bad_request", str(e))
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            return error(view, 400, "bad_request", "reason must be a string")
        result = await deps.store.decide_suggestion(
            who.tenant_id,
            suggestion_id,
            status,
            user_id=who.user_id,
            reason=reason,
            at=datetime.now(UTC),
        )
        if result is None:
            return error(view, 404, "not_found", f"no suggested link {suggestion_id}")
        outcome, suggestion = result
        if outcome == "conflict":
            message = f"the suggestion is already {suggestion.status}"
            return error(view, 409, "conflict", message)
        if outcome == "changed":
            await _apply(deps, suggestion)
        return view.json(suggestion.to_doc())

    @app.page("/api/v1/suggested-links/{suggestion_id}/approve")
    class Approve(View):
        @authenticated(authenticate)
        async def post(self, request: Request, who: Principal, suggestion_id: str) -> Response:
            return await decide(self, request, who, suggestion_id, "approved")

    @app.page("/api/v1/suggested-links/{suggestion_id}/reject")
    class Reject(View):
        @authenticated(authenticate)
        async def post(self, request: Request, who: Principal, suggestion_id: str) -> Response:
            return await decide(self, request, who, suggestion_id, "rejected")


async def _apply(deps: WebDeps, suggestion: SuggestedLink) -> None:
    """A decision's effects: the approved link on the source shard, and its link event."""
    status = suggestion.status
    if status == "approved":
        link = Link(
            target_shard_id=suggestion.target_shard_id,
            target_shard_type=suggestion.target_shard_type,
            confidence=suggestion.confidence,
            method=suggestion.method,
            status="approved",
        )
        shard = await deps.store.get(suggestion.tenant_id, suggestion.source_shard_id)
        automatic = [k for k in shard.links if k.status == "auto"] if shard else []
        await write_links(
            deps.store,
            suggestion.tenant_id,
            suggestion.source_shard_id,
            automatic,
            approved=[link],
        )
    await deps.writer.link_events(
        [
            LinkEvent(
                type="link.approved" if status == "approved" else "link.rejected",
                event_id=f"{suggestion.id}:{status}",
                tenant_id=suggestion.tenant_id,
                shard_id=suggestion.source_shard_id,
                target_shard_id=suggestion.target_shard_id,
                target_shard_type=suggestion.target_shard_type,
                confidence=suggestion.confidence,
                method=suggestion.method,
                status=status,
                occurred_at=suggestion.decided_at or datetime.now(UTC),
            )
        ]
    )


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as e:
        message = f"the body is not JSON: {e}"
        raise ValueError(message) from e
    if not isinstance(body, dict):
        message = "the body must be a JSON object"
        raise ValueError(message)  # noqa: TRY004  # one error type for every bad body
    return body
