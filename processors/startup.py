"""Start-up steps of the original plan: wait for dependencies, ensure shard types."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from core.exceptions import ProcessorsError, StartupError
from shards.store import ShardStore
from shards.types import ShardTypeDefinition, definitions

__all__ = ["ensure_shard_types", "wait_for"]

logger = logging.getLogger(__name__)


async def wait_for(
    name: str, check: Callable[[], Awaitable[object]], *, retries: int, delay: float
) -> None:
    """Call `check` until it returns without error, `retries` times `delay` apart."""
    for attempt in range(1, retries + 1):
        try:
            await check()
        except (ProcessorsError, OSError) as e:
            logger.warning("%s not ready (attempt %d/%d): %s", name, attempt, retries, e)
            if attempt < retries:
                await asyncio.sleep(delay)
        else:
            logger.info("%s is ready", name)
            return
    message = f"{name} not ready after {retries} attempts"
    raise StartupError(message)


async def ensure_shard_types(
    store: ShardStore,
    *,
    retries: int = 3,
    base_delay: float = 1.0,
    wanted: dict[str, ShardTypeDefinition] | None = None,
) -> dict[str, str]:
    """Create missing shard types and update those whose schema version changed.

    Each type gets `retries` tries with exponential backoff; then `StartupError`, so
    the worker fails fast and exits non-zero. Returns what was done per type.
    """
    done = {}
    for type_id, wanted_type in (wanted or definitions()).items():
        for attempt in range(retries):
            try:
                done[type_id] = await _ensure_one(store, wanted_type)
                break
            except ProcessorsError as e:
                logger.warning(
                    "could not ensure shard type %s (attempt %d/%d): %s",
                    type_id,
                    attempt + 1,
                    retries,
                    e,
                )
                if attempt + 1 == retries:
                    message = f"could not ensure shard type {type_id} after {retries} attempts"
                    raise StartupError(message) from e
                await asyncio.sleep(base_delay * 2**attempt)
    return done


async def _ensure_one(store: ShardStore, wanted: ShardTypeDefinition) -> str:
    existing = await store.get_shard_type(wanted.id)
    if existing is None:
        await store.put_shard_type(wanted)
        logger.info("created shard type %s v%d", wanted.id, wanted.schema_version)
        return "created"
    if existing.schema_version != wanted.schema_version:
        await store.put_shard_type(wanted)
        logger.info(
            "updated shard type %s v%d → v%d",
            wanted.id,
            existing.schema_version,
            wanted.schema_version,
        )
        return "updated"
    return "unchanged"
