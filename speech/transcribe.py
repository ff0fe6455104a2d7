"""What every transcription engine returns, and the interface the meeting agent calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

__all__ = ["Segment", "Transcriber", "Transcript"]


@dataclass(frozen=True)
class Segment:
    """A stretch of speech: seconds from the start of the recording, its text, its speaker."""

    start: float
    end: float
    text: str
    speaker: str | None = None


@dataclass(frozen=True)
class Transcript:
    """A recording's text, its timed segments, and what the engine found out about it."""

    text: str
    segments: list[Segment] = field(default_factory=list)
    language: str | None = None
    duration_seconds: float | None = None
    engine: str = ""


@runtime_checkable
class Transcriber(Protocol):
    """Turns an audio file into a Transcript; synchronous (the caller runs it off the loop).

    Raises `core.exceptions.BadEventError` for a file that can never be transcribed,
    `TransientError` for a failure worth retrying, `ConfigurationError` for a bad setting.
    """

    def transcribe(self, path: Path) -> Transcript: ...
