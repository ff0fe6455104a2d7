"""The suggested-links API of CONTRACT §4: list, approve, reject."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import faust
from faust.web import Request, Response, View

from shards.links import write_links
from shards.model import Link
from shards.suggestions import SuggestedLink
from streams.models import LinkEvent, RelinkRequest
from web.auth import Principal
from web.deps import WebDeps
from web.http import Authenticate, BadBody, authenticated, error, json_object, limit_of

__all__ = ["MAX_LIMIT", "MAX_REASON_CHARS", "reason_of", "register_suggestion_views"]

MAX_LIMIT = 200
#: The longest `reason` a decision may carry; longer is 400.
MAX_REASON_CHARS = 2000
STATUSES = ("pending_review", "approved", "rejected", "withdrawn")


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
            reason = reason_of(await json_object(request))
        except BadBody as e:
            return error(view, e.status, e.code, str(e))
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
            # What a person decided changes what the rest becomes: the activity's other
            # candidates (a rejected target's rival), its thread's later messages. The
            # linking agent that owns the activity re-evaluates it.
            await deps.writer.relink(
                [
                    RelinkRequest(
                        tenant_id=suggestion.tenant_id,
                        shard_id=suggestion.source_shard_id,
                        reason=f"suggestion {suggestion.id} {suggestion.status}",
                    )
                ]
            )
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


def reason_of(body: dict[str, Any]) -> str | None:
    """The decision's `reason`: absent, null or a string of at most `MAX_REASON_CHARS`
    characters (Unicode code points) that is valid Unicode; `BadBody` otherwise."""
    reason = body.get("reason")
    if reason is None:
        return None
    if not isinstance(reason, str):
        message = "reason must be a string"
        raise BadBody(message)
    if len(reason) > MAX_REASON_CHARS:
        message = f"reason must be at most {MAX_REASON_CHARS} characters"
        raise BadBody(message)
    try:
        reason.encode()
    except UnicodeEncodeError:  # a lone surrogate escape ("\\ud800") would poison the record
        message = "reason must be valid Unicode"
        raise BadBody(message) from None
    return reason
