"""Defines a shard-producing Faust agent on a raw topic: batches in, pipeline, nothing raised."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import faust
from faust.types import StreamT

from agents.deps import AgentDeps
from agents.pipeline import ShardPipeline
from core.tenants import TenantConfig
from shards.model import ShardDraft, WriteOutcome
from streams.consuming import batches
from streams.models import RawEvent

__all__ = ["define_shard_agent", "define_tenant_agent"]


def define_shard_agent(
    app: faust.App,
    deps: AgentDeps,
    *,
    name: str,
    data_type: str,
    to_draft: Callable[[RawEvent], ShardDraft | Awaitable[ShardDraft]],
    follow_ups: Callable[[RawEvent, ShardDraft], list[RawEvent]] | None = None,
    after_write: Callable[[list[WriteOutcome]], Awaitable[list[WriteOutcome]]] | None = None,
    doc: str,
    concurrency: int = 1,
    stage: str = "map",
) -> str:
    """Define agent `name` on `integration.raw.<data_type>`; its name."""
    settings = deps.settings

    async def consume(stream: StreamT[bytes]) -> None:
        pipeline = ShardPipeline(
            agent=data_type,
            data_type=data_type,
            to_draft=to_draft,
            follow_ups=follow_ups,
            after_write=after_write,
            store=deps.store,
            writer=deps.writer,
            retries=settings.AGENT_RETRIES,
            retry_max_delay=settings.AGENT_RETRY_MAX_DELAY,
            concurrency=concurrency,
            stage=stage,
        )
        async for batch in batches(stream, settings.AGENT_BATCH_SIZE, settings.AGENT_BATCH_WINDOW):
            await pipeline.process(batch)

    consume.__name__ = consume.__qualname__ = name
    consume.__doc__ = doc
    agent = app.agent(deps.topics.raw[data_type], name=name)(consume)
    return str(agent.name)


def define_tenant_agent(
    app: faust.App,
    deps: AgentDeps,
    *,
    name: str,
    data_type: str,
    normalise: Callable[[RawEvent, TenantConfig], ShardDraft],
    follow_ups: Callable[[RawEvent, ShardDraft], list[RawEvent]] | None = None,
    doc: str,
) -> str:
    """Define agent `name` whose drafts come from `normalise(event, the tenant's config)`."""
    return define_shard_agent(
        app,
        deps,
        name=name,
        data_type=data_type,
        to_draft=lambda event: normalise(event, deps.tenants.of(event.tenant_id)),
        follow_ups=follow_ups,
        doc=doc,
    )
