"""Transcription of meeting recordings: local faster-whisper or Azure AI Speech.

Import the engines from their modules (`speech.whisper`, `speech.azure`); this package
only names what every caller needs, and imports nothing heavy.
"""

from __future__ import annotations

from speech.runner import TranscriberFactory, run_transcription
from speech.transcribe import Segment, Transcriber, Transcript

__all__ = ["Segment", "Transcriber", "TranscriberFactory", "Transcript", "run_transcription"]
