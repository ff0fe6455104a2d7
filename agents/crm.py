"""The CRM agent: raw CRM records become Opportunity, Account, Contact and User shards."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from faust.types import StreamT

from agents.pipeline import IncomingEvent, ShardPipeline
from mappings.crm import map_crm_event

if TYPE_CHECKING:
    from processors.app import ProcessorsApp

__all__ = ["register"]


def register(app: ProcessorsApp) -> str:
    """Define `process_crm_records` on `app`; its name."""
    settings = app.settings

    @app.agent(app.contract_topics.raw["crm"], name="process_crm_records")
    async def process_crm_records(stream: StreamT[bytes]) -> None:
        """Map each batch of raw CRM records, write the shards once, announce them."""
        deps = app.deps
        pipeline = ShardPipeline(
            agent="crm",
            data_type="crm",
            to_draft=functools.partial(map_crm_event, mappings=deps.mappings),
            store=deps.store,
            writer=deps.writer,
            retries=settings.AGENT_RETRIES,
            retry_max_delay=settings.AGENT_RETRY_MAX_DELAY,
        )
        async for batch in stream.take_events(  # type: ignore[attr-defined]  # missing from StreamT
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

    return process_crm_records.name
