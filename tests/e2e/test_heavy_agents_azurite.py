"""The heavy agents again with Azure Blob Storage (Azurite) instead of the local folder."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob.aio import BlobServiceClient

from shards.ids import shard_id
from tests.e2e.conftest import Pipeline, running_pipeline
from tests.e2e.test_heavy_agents import TENANT, _document, _publish, _shard
from tests.e2e.test_pipeline import wait_for
from tests.fixtures import documents as docs
from tests.fixtures import speech
from tests.integration.azurite import Azurite

CONTAINER = "integration-files"


@pytest.fixture(scope="module")
def azurite() -> Iterator[Azurite]:
    with Azurite() as running:
        yield running


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, rabbitmq_url: str, azurite: Azurite) -> Iterator[Pipeline]:
    asyncio.run(_create_container(azurite.connection_string))
    with running_pipeline(
        tmp_path_factory.mktemp("azure-pipeline"),
        rabbitmq_url,
        AZURE_BLOB_CONNECTION_STRING=azurite.connection_string,
    ) as pipe:
        yield pipe


async def _create_container(connection_string: str) -> None:
    async with BlobServiceClient.from_connection_string(connection_string) as service:
        await service.create_container(CONTAINER)


def _upload(azurite: Azurite, source: Path) -> dict[str, Any]:
    path = f"{TENANT}/{uuid.uuid4().hex[:8]}/{source.name}"

    async def upload() -> None:
        async with BlobServiceClient.from_connection_string(azurite.connection_string) as s:
            await s.get_blob_client(CONTAINER, path).upload_blob(source.read_bytes())

    asyncio.run(upload())
    return {"container": CONTAINER, "path": path, "size": source.stat().st_size}


def test_ready_names_the_azure_blob_store(pipeline) -> None:
    import httpx

    body = httpx.get(f"{pipeline.base_url}/ready").json()
    assert body["checks"]["blobs"] == {"ok": True}


@pytest.mark.parametrize(
    ("make", "content_type", "phrase", "ocr_text"),
    [
        (docs.make_text_pdf, "application/pdf", docs.PDF_PAGES[1][:40], None),
        (docs.make_png, "image/png", None, docs.OCR_TEXT),
    ],
    ids=["text PDF", "PNG of text"],
)
def test_files_in_azure_become_documents(
    pipeline, azurite: Azurite, tmp_path: Path, make, content_type, phrase, ocr_text
) -> None:
    source = make(tmp_path)
    external_id = f"az-{uuid.uuid4().hex[:10]}"
    blob = _upload(azurite, source)
    _publish(pipeline, [_document(external_id, blob, source.name, content_type)])
    sid = shard_id(TENANT, "gdrive", "document", external_id)
    shard = wait_for("the document", lambda: _shard(pipeline, sid), timeout=180)
    text = shard["unstructuredData"].get("text", "")
    assert shard["structuredData"]["extractionStatus"] == "ok"
    if phrase:
        assert phrase in text
    if ocr_text:
        assert docs.word_accuracy(ocr_text, text) >= 0.9


def test_a_recording_in_azure_becomes_a_meeting(pipeline, azurite: Azurite, tmp_path: Path) -> None:
    recording = speech.recording(tmp_path, "wav")
    external_id = f"az-mtg-{uuid.uuid4().hex[:10]}"
    blob = _upload(azurite, recording)
    meeting = {
        "eventId": f"evt-{external_id}", "eventType": "integration.data.raw",
        "dataType": "meeting", "tenantId": TENANT, "integrationId": "int-zoom-1",
        "provider": "zoom", "externalId": external_id,
        "payload": {"meetingId": external_id, "title": "Pricing review",
                    "start": "2026-11-02T15:00:00Z", "end": "2026-11-02T15:30:00Z",
                    "participants": []},
        "blob": {**blob, "contentType": "audio/wav"},
    }  # fmt: skip
    _publish(pipeline, [meeting])
    sid = shard_id(TENANT, "zoom", "meeting", external_id)
    shard = wait_for("the meeting", lambda: _shard(pipeline, sid), timeout=240)
    wer = speech.word_error_rate(" ".join(speech.SENTENCES), shard["unstructuredData"]["text"])
    assert wer <= 0.15, json.dumps(shard["unstructuredData"])[:500]
