"""The one place that builds adapters from settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from blobs.factory import blob_store_from
from blobs.store import BlobStore
from mappings.crm import ProviderMapping, shipped_mappings
from processors.embedded_broker import recorded_broker_url
from processors.exceptions import ConfigurationError
from processors.settings import Settings
from processors.startup import ensure_shard_types, wait_for
from processors.tenants import TenantDirectory
from shards.sqlite import SqliteShardStore
from shards.store import ShardStore
from streams.admin import BrokerAdmin
from streams.channels import StreamWriter, Topics
from streams.topics import all_topics, internal_topics

__all__ = ["DEFAULT_BROKER_URL", "Dependencies", "build_store", "resolve_broker_url"]

logger = logging.getLogger(__name__)

DEFAULT_BROKER_URL = "kafka://127.0.0.1:9092"


def resolve_broker_url(settings: Settings) -> str:
    """`BROKER_URL`, else the running embedded broker's URL, else localhost:9092."""
    if settings.BROKER_URL:
        return settings.BROKER_URL
    return recorded_broker_url(settings.broker_url_file) or DEFAULT_BROKER_URL


def build_store(settings: Settings) -> ShardStore:
    """The shard store `STORE_URL` names; unset: the embedded file under `DATA_DIR`."""
    url = settings.STORE_URL
    if not url:
        return SqliteShardStore(settings.DATA_DIR / "shards.sqlite3")
    if url.startswith("sqlite://"):
        return SqliteShardStore.from_url(url)
    message = f"STORE_URL {url!r}: unsupported scheme (supported: sqlite://)"
    raise ConfigurationError(message)


@dataclass
class Dependencies:
    """What agents and views use; started by the app before any agent runs."""

    settings: Settings
    broker_url: str
    store: ShardStore
    writer: StreamWriter
    admin: BrokerAdmin
    tenants: TenantDirectory
    blobs: BlobStore
    mappings: dict[str, ProviderMapping] = field(default_factory=shipped_mappings)

    @classmethod
    def build(cls, settings: Settings, broker_url: str, topics: Topics) -> Dependencies:
        """Build (without connecting) every adapter from settings."""
        return cls(
            settings=settings,
            broker_url=broker_url,
            store=build_store(settings),
            writer=StreamWriter(topics),
            admin=BrokerAdmin(broker_url),
            tenants=TenantDirectory.load(settings.TENANT_CONFIG),
            blobs=blob_store_from(
                settings.AZURE_BLOB_CONNECTION_STRING.get_secret_value()
                if settings.AZURE_BLOB_CONNECTION_STRING
                else None,
                settings.blob_dir,
            ),
        )

    async def start(self) -> None:
        """Wait for broker and store (bounded retries), then ensure topics and shard types."""
        s = self.settings
        await wait_for(
            f"broker {self.broker_url}",
            self.admin.start,
            retries=s.STARTUP_RETRIES,
            delay=s.STARTUP_RETRY_DELAY,
        )
        await self.admin.ensure_topics(
            [*all_topics(), *internal_topics()],
            partitions=s.TOPIC_PARTITIONS,
            replication=s.TOPIC_REPLICATION,
        )
        await wait_for(
            "shard store", self._start_store, retries=s.STARTUP_RETRIES, delay=s.STARTUP_RETRY_DELAY
        )
        await wait_for(
            "blob storage",
            self._start_blobs,
            retries=s.STARTUP_RETRIES,
            delay=s.STARTUP_RETRY_DELAY,
        )
        await ensure_shard_types(
            self.store, retries=s.SHARD_TYPE_RETRIES, base_delay=s.SHARD_TYPE_RETRY_DELAY
        )

    async def _start_blobs(self) -> None:
        await self.blobs.start()
        await self.blobs.ping()

    async def _start_store(self) -> None:
        await self.store.start()
        await self.store.ping()

    async def stop(self) -> None:
        """Close every adapter; safe to call twice."""
        await self.store.stop()
        await self.blobs.stop()
        await self.admin.stop()
