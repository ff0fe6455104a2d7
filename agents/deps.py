"""What the agents are given by the app that registers them (built by `processors.bootstrap`)."""

from __future__ import annotations

from dataclasses import dataclass

from blobs.store import BlobStore
from core.settings import Settings
from core.tenants import TenantDirectory
from documents.runner import OcrFactory
from mappings.tenant import TenantMappings
from shards.store import ShardStore
from speech.runner import TranscriberFactory
from streams.channels import StreamWriter, Topics

__all__ = ["AgentDeps"]


@dataclass(frozen=True, slots=True)
class AgentDeps:
    """Settings, the contract's topics and the adapters agents use; nothing is looked up."""

    settings: Settings
    topics: Topics
    writer: StreamWriter
    store: ShardStore
    tenants: TenantDirectory
    mappings: TenantMappings
    blobs: BlobStore
    ocr: OcrFactory
    transcriber: TranscriberFactory
