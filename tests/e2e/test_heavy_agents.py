"""Files and recordings through the whole pipeline: blob store, extraction, OCR, speech."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.publisher import RawEventPublisher
from shards.ids import shard_id
from tests.e2e.test_pipeline import _run, wait_for
from tests.fixtures import documents as docs
from tests.fixtures import speech

TENANT = "t-demo"


def _put(pipeline, source: Path, container: str = "integration-files") -> dict[str, Any]:
    """Copy a file into the pipeline's local blob store; its blob reference."""
    path = f"{TENANT}/{uuid.uuid4().hex[:8]}/{source.name}"
    target = pipeline.data_dir / "data" / "blobs" / container / path
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return {"container": container, "path": path, "size": source.stat().st_size}


def _document(external_id: str, blob: dict[str, Any], file_name: str, content_type: str) -> dict:
    return {
        "eventId": f"evt-{external_id}",
        "eventType": "integration.data.raw",
        "dataType": "document",
        "tenantId": TENANT,
        "integrationId": "int-gdrive-1",
        "provider": "gdrive",
        "externalId": external_id,
        "occurredAt": "2026-11-02T09:15:00Z",
        "payload": {
            "documentId": external_id,
            "fileName": file_name,
            "contentType": content_type,
            "size": blob["size"],
            "source": "gdrive",
            "owner": {"email": "dan.ortiz@northwind-sales.com"},
        },
        "blob": {**blob, "contentType": content_type},
    }


def _publish(pipeline, envelopes: list[dict[str, Any]]) -> None:
    async def publish() -> None:
        async with RawEventPublisher(
            pipeline.env["RABBITMQ_URL"], queue_prefix=pipeline.env["BRIDGE_QUEUE_PREFIX"]
        ) as publisher:
            await publisher.publish_events(json.dumps(e).encode() for e in envelopes)

    _run(publish())


def _shard(pipeline, sid: str) -> dict[str, Any] | None:
    answer = httpx.get(
        f"{pipeline.base_url}/api/v1/shards/{sid}",
        headers={"Authorization": f"Bearer {pipeline.token(TENANT)}"},
    )
    return answer.json() if answer.status_code == 200 else None


CASES = [
    ("text PDF", docs.make_text_pdf, "application/pdf", [docs.PDF_PAGES[1][:40]], None),
    ("scanned PDF", docs.make_scanned_pdf, "application/pdf", [], docs.OCR_TEXT),
    ("DOCX with a table", docs.make_docx,
     "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
     ["Executive summary", "Dispatcher licence\t120\t800"], None),
    ("XLSX with two sheets", docs.make_xlsx,
     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
     ["Pricing", "Contacts", "priya.raman@fabrikam-logistics.com"], None),
    ("PNG of text", docs.make_png, "image/png", [], docs.OCR_TEXT),
]  # fmt: skip


@pytest.mark.parametrize("case", [c[0] for c in CASES])
def test_files_become_document_shards_with_their_text(pipeline, tmp_path: Path, case: str) -> None:
    _, make, content_type, phrases, ocr_text = next(c for c in CASES if c[0] == case)
    source = make(tmp_path)
    external_id = f"doc-{uuid.uuid4().hex[:10]}"
    _publish(pipeline, [_document(external_id, _put(pipeline, source), source.name, content_type)])
    sid = shard_id(TENANT, "gdrive", "document", external_id)
    shard = wait_for(case, lambda: _shard(pipeline, sid), timeout=180)
    data, text = shard["structuredData"], shard["unstructuredData"].get("text", "")
    assert data["extractionStatus"] == "ok", data
    assert data["fileName"] == source.name
    for phrase in phrases:
        assert phrase in text, (phrase, text[:500])
    if ocr_text is not None:
        accuracy = docs.word_accuracy(ocr_text, text)
        print(f"{case}: OCR word accuracy {accuracy:.3f}")
        assert accuracy >= 0.9
        assert data["ocrPages"] >= 1


def test_a_bad_file_is_a_document_with_its_status(pipeline, tmp_path: Path) -> None:
    source = docs.make_encrypted_pdf(tmp_path)
    external_id = f"doc-{uuid.uuid4().hex[:10]}"
    _publish(
        pipeline, [_document(external_id, _put(pipeline, source), source.name, "application/pdf")]
    )
    sid = shard_id(TENANT, "gdrive", "document", external_id)
    shard = wait_for("the encrypted file", lambda: _shard(pipeline, sid), timeout=120)
    assert shard["structuredData"]["extractionStatus"] == "encrypted"
    assert shard["structuredData"]["extractionReason"]


def test_a_spoken_recording_becomes_a_meeting_with_its_transcript(pipeline, tmp_path: Path) -> None:
    recording = speech.recording(tmp_path, "wav")
    external_id = f"mtg-{uuid.uuid4().hex[:10]}"
    blob = _put(pipeline, recording, container="recordings")
    meeting = {
        "eventId": f"evt-{external_id}",
        "eventType": "integration.data.raw",
        "dataType": "meeting",
        "tenantId": TENANT,
        "integrationId": "int-zoom-1",
        "provider": "zoom",
        "externalId": external_id,
        "occurredAt": "2026-11-02T16:00:00Z",
        "payload": {
            "meetingId": external_id,
            "title": "Fabrikam pricing review",
            "start": "2026-11-02T15:00:00Z",
            "end": "2026-11-02T15:30:00Z",
            "participants": [
                {"email": "priya.raman@fabrikam-logistics.com", "name": "Priya Raman"},
                {"email": "dan.ortiz@northwind-sales.com", "name": "Dan Ortiz"},
            ],
        },
        "blob": {**blob, "contentType": "audio/wav"},
    }
    _publish(pipeline, [meeting])
    sid = shard_id(TENANT, "zoom", "meeting", external_id)
    shard = wait_for("the meeting", lambda: _shard(pipeline, sid), timeout=240)
    text = shard["unstructuredData"]["text"]
    wer = speech.word_error_rate(" ".join(speech.SENTENCES), text)
    print(f"speech word error rate {wer:.3f}: {text!r}")
    assert wer <= 0.15
    segments = shard["unstructuredData"]["segments"]
    assert segments and all(s["end"] >= s["start"] for s in segments)
    assert shard["structuredData"]["durationMinutes"] == 30.0
    assert len(shard["structuredData"]["participants"]) == 2


def test_a_provider_transcript_is_used_as_is(pipeline) -> None:
    external_id = f"mtg-{uuid.uuid4().hex[:10]}"
    meeting = {
        "eventId": f"evt-{external_id}", "eventType": "integration.data.raw",
        "dataType": "meeting", "tenantId": TENANT, "integrationId": "int-zoom-1",
        "provider": "zoom", "externalId": external_id,
        "payload": {"meetingId": external_id, "title": "Sync", "start": "2026-11-02T15:00:00Z",
                    "end": "2026-11-02T15:15:00Z", "participants": [],
                    "transcript": "Dan: we agreed on the pilot."},
    }  # fmt: skip
    _publish(pipeline, [meeting])
    sid = shard_id(TENANT, "zoom", "meeting", external_id)
    shard = wait_for("the meeting", lambda: _shard(pipeline, sid), timeout=60)
    assert shard["unstructuredData"]["text"] == "Dan: we agreed on the pilot."
    assert shard["structuredData"]["transcriptSource"] == "provider"


def test_an_email_with_two_attachments_gives_two_documents_naming_it(
    pipeline, tmp_path: Path
) -> None:
    pdf, docx = docs.make_text_pdf(tmp_path), docs.make_docx(tmp_path)
    external_id = f"mail-{uuid.uuid4().hex[:10]}"
    attachments = []
    for source, content_type in (
        (pdf, "application/pdf"),
        (docx, "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ):
        blob = _put(pipeline, source)
        attachments.append({
            "fileName": source.name, "contentType": content_type, "size": blob["size"],
            "blob": {**blob, "contentType": content_type},
        })  # fmt: skip
    email = {
        "eventId": f"evt-{external_id}", "eventType": "integration.data.raw",
        "dataType": "email", "tenantId": TENANT, "integrationId": "int-generic-1",
        "provider": "generic", "externalId": external_id, "occurredAt": "2026-11-02T09:15:00Z",
        "payload": {
            "messageId": f"<{external_id}@fabrikam-logistics.com>", "threadId": "thr-att",
            "subject": "Proposal and plan", "sentAt": "2026-11-02T09:14:03Z",
            "from": {"email": "priya.raman@fabrikam-logistics.com", "name": "Priya Raman"},
            "to": [{"email": "dan.ortiz@northwind-sales.com", "name": "Dan Ortiz"}],
            "cc": [], "bcc": [], "bodyText": "Both files attached.", "attachments": attachments,
        },
    }  # fmt: skip
    _publish(pipeline, [email])
    email_id = shard_id(TENANT, "generic", "email", external_id)
    wait_for("the email", lambda: _shard(pipeline, email_id), timeout=60)

    def documents() -> list[dict[str, Any]] | None:
        answer = httpx.get(
            f"{pipeline.base_url}/api/v1/shards",
            params={"shardType": "Document", "limit": "500"},
            headers={"Authorization": f"Bearer {pipeline.token(TENANT)}"},
        )
        mine = [
            s for s in answer.json()["items"]
            if s["structuredData"].get("parentEmailShardId") == email_id
        ]  # fmt: skip
        return mine if len(mine) == 2 else None

    found = wait_for("two Document shards", documents, timeout=120)
    assert sorted(d["structuredData"]["fileName"] for d in found) == sorted([pdf.name, docx.name])
    assert all(d["structuredData"]["extractionStatus"] == "ok" for d in found)
    assert all(d["unstructuredData"]["text"] for d in found)
