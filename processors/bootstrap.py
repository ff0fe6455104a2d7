"""The one place that builds adapters from settings: store, blobs, OCR, transcription,
tenants and their CRM mappings, broker admin."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

from blobs.factory import blob_store_from
from blobs.store import BlobStore
from core.exceptions import ConfigurationError
from core.settings import Settings
from core.tenants import TenantDirectory
from documents.runner import OcrFactory
from mappings.crm import shipped_mappings
from mappings.tenant import TenantMappings
from processors.embedded_broker import recorded_broker_url
from processors.startup import ensure_shard_types, wait_for
from shards.sqlite import SqliteShardStore
from shards.store import ShardStore
from speech.runner import TranscriberFactory
from streams.admin import BrokerAdmin
from streams.topics import all_topics, internal_topics

__all__ = [
    "DEFAULT_BROKER_URL",
    "Adapters",
    "build_adapters",
    "build_store",
    "ocr_factory",
    "resolve_broker_url",
    "transcriber_factory",
]

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
        return SqliteShardStore(
            settings.DATA_DIR / "shards.sqlite3", cache_mb=settings.SQLITE_CACHE_MB
        )
    if url.startswith("sqlite://"):
        return SqliteShardStore.from_url(url, cache_mb=settings.SQLITE_CACHE_MB)
    if url.startswith("cosmos://"):
        if settings.COSMOS_KEY is None:
            message = "STORE_URL is cosmos:// but COSMOS_KEY is not set"
            raise ConfigurationError(message)
        from shards.cosmos import CosmosShardStore  # the SDK only when configured

        return CosmosShardStore.from_url(
            url,
            settings.COSMOS_KEY.get_secret_value(),
            verify_tls=settings.COSMOS_VERIFY_TLS,
            throttle_retries=settings.COSMOS_THROTTLE_RETRIES,
            throttle_max_wait=settings.COSMOS_THROTTLE_MAX_WAIT,
        )
    message = f"STORE_URL {url!r}: unsupported scheme (supported: sqlite://, cosmos://)"
    raise ConfigurationError(message)


def ocr_factory(settings: Settings) -> OcrFactory:
    """Azure AI Vision when its endpoint and key are set, else local Tesseract."""
    if settings.AZURE_COMPUTER_VISION_ENDPOINT and settings.AZURE_COMPUTER_VISION_KEY:
        from documents.azure_vision import AzureVisionOcr  # the SDK only when configured

        return functools.partial(
            AzureVisionOcr,
            settings.AZURE_COMPUTER_VISION_ENDPOINT,
            settings.AZURE_COMPUTER_VISION_KEY.get_secret_value(),
        )
    from documents.ocr import TesseractOcr

    return TesseractOcr


def transcriber_factory(settings: Settings) -> TranscriberFactory:
    """Azure Speech when `AZURE_SPEECH_ENDPOINT` and its key are set, else local Whisper."""
    if settings.AZURE_SPEECH_ENDPOINT and settings.AZURE_SPEECH_KEY:
        from speech.azure import AzureSpeechTranscriber  # only when configured

        return functools.partial(
            AzureSpeechTranscriber,
            settings.AZURE_SPEECH_ENDPOINT,
            settings.AZURE_SPEECH_KEY.get_secret_value(),
        )
    from speech.whisper import WhisperTranscriber  # the model loads in the child only

    return WhisperTranscriber


@dataclass
class Adapters:
    """Every adapter of a process, built (not connected) from settings; `start` connects."""

    settings: Settings
    broker_url: str
    store: ShardStore
    admin: BrokerAdmin
    tenants: TenantDirectory
    mappings: TenantMappings
    blobs: BlobStore
    ocr: OcrFactory
    transcriber: TranscriberFactory

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


def build_adapters(settings: Settings) -> Adapters:
    """Build every adapter from settings; a bad setting or tenant file raises
    `ConfigurationError` here, before anything connects."""
    broker_url = resolve_broker_url(settings)
    tenants = TenantDirectory.load(settings.TENANT_CONFIG)
    connection_string = settings.AZURE_BLOB_CONNECTION_STRING
    return Adapters(
        settings=settings,
        broker_url=broker_url,
        store=build_store(settings),
        admin=BrokerAdmin(broker_url),
        tenants=tenants,
        mappings=TenantMappings.of_directory(tenants, shipped_mappings()),
        blobs=blob_store_from(
            connection_string.get_secret_value() if connection_string else None,
            settings.blob_dir,
        ),
        ocr=ocr_factory(settings),
        transcriber=transcriber_factory(settings),
    )
