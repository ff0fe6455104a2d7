"""Meeting events: the recording to transcribe (unless a transcript came with it) and the
Meeting shard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from core.exceptions import MappingError
from core.tenants import TenantConfig
from normalisers.common import build_draft, utc_iso
from normalisers.people import person
from shards.model import ShardDraft
from shards.participants import build_participants
from streams.models import BlobRef, RawEvent

__all__ = ["MeetingRequest", "TranscriptLike", "meeting_draft", "meeting_request"]


class SegmentLike(Protocol):
    @property
    def start(self) -> float: ...

    @property
    def end(self) -> float: ...

    @property
    def text(self) -> str: ...

    @property
    def speaker(self) -> str | None: ...


class TranscriptLike(Protocol):
    """What a transcription gives back (`speech.transcribe.Transcript`)."""

    @property
    def text(self) -> str: ...

    @property
    def segments(self) -> list[Any]: ...

    @property
    def language(self) -> str | None: ...

    @property
    def duration_seconds(self) -> float | None: ...

    @property
    def engine(self) -> str: ...


@dataclass(frozen=True, slots=True)
class MeetingRequest:
    """A recording to transcribe, or None when the provider sent its transcript."""

    blob: BlobRef | None
    transcript: str | None


def meeting_request(event: RawEvent) -> MeetingRequest:
    """What the meeting event carries; `MappingError` when it has neither."""
    transcript = event.payload.get("transcript")
    if transcript is not None and not isinstance(transcript, str):
        message = "payload.transcript must be text"
        raise MappingError(message)
    if not transcript and event.blob is None:
        message = "a meeting event needs a transcript or the recording's blob"
        raise MappingError(message)
    return MeetingRequest(blob=event.blob, transcript=transcript or None)


def meeting_draft(
    event: RawEvent, tenant: TenantConfig, transcript: TranscriptLike | None
) -> ShardDraft:
    """The Meeting shard: people, times, duration and the transcript with timestamps."""
    payload = event.payload
    start = utc_iso(payload.get("start"), field="start")
    end = utc_iso(payload.get("end"), field="end")
    people = [
        person(p.get("email"), p.get("name"))
        for p in payload.get("participants") or []
        if isinstance(p, dict)
    ]
    participants = build_participants("Meeting", {"participants": people})
    for p in participants:
        if p.get("email") and tenant.internal_domains:
            p["internal"] = tenant.is_internal(p["email"])
    duration = None
    if start and end:
        duration = round(
            (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() / 60, 1
        )
    elif transcript is not None and transcript.duration_seconds:
        duration = round(transcript.duration_seconds / 60, 1)
    structured: dict[str, Any] = {
        "meetingId": str(payload.get("meetingId") or event.external_id),
        "title": payload.get("title"),
        "start": start,
        "end": end,
        "durationMinutes": duration,
        "participants": participants,
        "transcriptSource": "provider" if transcript is None else transcript.engine,
        "language": transcript.language if transcript is not None else None,
        "blob": event.blob.to_wire() if event.blob else None,
    }
    unstructured: dict[str, Any] = {}
    if transcript is None:
        unstructured["text"] = str(payload.get("transcript") or "")
    else:
        unstructured["text"] = transcript.text
        unstructured["segments"] = [
            {"start": round(s.start, 2), "end": round(s.end, 2), "text": s.text}
            | ({"speaker": s.speaker} if s.speaker else {})
            for s in transcript.segments
        ]
    return build_draft(
        event, "Meeting", {k: v for k, v in structured.items() if v is not None}, unstructured
    )
