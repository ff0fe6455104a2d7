"""Defines a shard-producing Faust agent on a raw topic: batches in, pipeline, nothing raised."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import faust
from faust.types import StreamT

from agents.deps import AgentDeps
from agents.pipeline import ShardPipeline
from core.tenants import TenantConfig
from shards.model import ShardDraft, WriteOutcome
from streams.batch_delivery import batched_stream
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
        # Delivered in chunks, a light agent's batch is acknowledged after the next one's
        # body: its write (the store's thread, SQLite's C code without the GIL) overlaps
        # the next batch's parsing and mapping on the event loop. The writes stay in
        # order (mapping is synchronous, so each batch asks the one store thread before
        # the next does) and each body waits for the batch before it. Heavy agents
        # (extraction, transcription) keep one batch at a time: theirs finish out of order.
        lag = batched_stream(stream) and stage == "map"
        size, window = settings.AGENT_BATCH_SIZE, settings.AGENT_BATCH_WINDOW
        before: asyncio.Future[list[WriteOutcome]] | None = None
        try:
            async for batch in batches(stream, size, window, lag=lag):
                if not lag:
                    await pipeline.process(batch)
                    continue
                this = asyncio.ensure_future(pipeline.process(batch)) if batch else None
                try:
                    if before is not None:
                        await before
                finally:
                    before = this
        finally:
            if before is not None and not before.done():
                before.cancel()  # not acknowledged: delivered again

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
