"""Defines a shard-producing Faust agent on a raw topic: batches in, pipeline, nothing raised."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from faust.types import StreamT

from agents.pipeline import IncomingEvent, ShardPipeline
from shards.model import ShardDraft, WriteOutcome
from streams.models import RawEvent

if TYPE_CHECKING:
    from processors.app import ProcessorsApp

__all__ = ["define_shard_agent"]


def define_shard_agent(
    app: ProcessorsApp,
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
    settings = app.settings

    async def consume(stream: StreamT[bytes]) -> None:
        deps = app.deps
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
        async for batch in stream.take_events(  # type: ignore[attr-defined]  # not in StreamT
            settings.AGENT_BATCH_SIZE, within=settings.AGENT_BATCH_WINDOW
        ):
            await pipeline.process(
                [
                    IncomingEvent(
                        value=e.value,
                        key=e.key,
                        topic=e.message.topic,
                        partition=e.message.partition,
                        offset=e.message.offset,
                    )
                    for e in batch
                ]
            )

    consume.__name__ = consume.__qualname__ = name
    consume.__doc__ = doc
    agent = app.agent(app.contract_topics.raw[data_type], name=name)(consume)
    return str(agent.name)
