"""Azure AI Speech through its REST fast-transcription API (`transcriptions:transcribe`).

The Speech SDK (`azure-cognitiveservices-speech`) is a native library that talks only to
the real service; the REST API is one multipart POST with a synchronous JSON answer,
testable against a local server. The service takes files under 2 hours and 200 MB;
longer or larger recordings are cut (in pauses, see `speech.audio`) into FLAC parts that
are sent one after another. Speaker numbers restart in each part, so a split recording's
labels name the part too.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

from core.exceptions import BadEventError, ConfigurationError, TransientError
from core.retry_after import retry_after_seconds
from speech.transcribe import Segment, Transcript

__all__ = ["API_VERSION", "AzureSpeechTranscriber"]

logger = logging.getLogger(__name__)

API_VERSION = "2024-11-15"
ENGINE = "azure-speech"
TRANSCRIBE_PATH = "/speechtotext/transcriptions:transcribe"
# The service's limits for one request.
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
MAX_UPLOAD_SECONDS = 2 * 3600.0
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_REGION = re.compile(r"^[a-z0-9]+$")


class _RetryableError(Exception):
    """A 429/5xx answer or a broken connection; `retry_after` is what the service asked for."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class _Part:
    """The transcript of one request, its times relative to the start of what was sent."""

    text: str
    segments: list[Segment]
    language: str | None
    duration_seconds: float | None


class AzureSpeechTranscriber:
    """Transcribes recordings with Azure AI Speech fast transcription.

    Args:
        endpoint: the resource's endpoint (`https://<name>.cognitiveservices.azure.com`)
            or just its region (`westeurope`).
        key: the resource key (`Ocp-Apim-Subscription-Key`).
        locales: candidate locales; one known locale is the most accurate.
        max_speakers: diarization up to this many speakers; None turns diarization off.
        request_timeout: seconds to wait for one answer (the service answers when done).
        attempts: tries per request for 429, 5xx and connection errors.
        max_retry_delay: cap, in seconds, of one wait between tries (Retry-After included).
        chunk_seconds: length of the parts a too long or too large recording is cut into.
        transport: an httpx transport (tests).
    """

    def __init__(
        self,
        endpoint: str,
        key: str | SecretStr,
        *,
        locales: Sequence[str] = ("en-US",),
        max_speakers: int | None = 10,
        request_timeout: float = 600.0,
        attempts: int = 5,
        max_retry_delay: float = 60.0,
        chunk_seconds: float = 1800.0,
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
        max_upload_seconds: float = MAX_UPLOAD_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = _transcribe_url(endpoint)
        self._key = key if isinstance(key, SecretStr) else SecretStr(key)
        if not self._key.get_secret_value():
            raise ConfigurationError("the Azure Speech key is empty")
        if max_speakers is not None and not 2 <= max_speakers <= 36:
            raise ConfigurationError("max_speakers must be between 2 and 36")
        if not 0 < chunk_seconds <= max_upload_seconds:
            raise ConfigurationError("chunk_seconds must be positive and within the upload limit")
        definition: dict[str, Any] = {"locales": list(locales)}
        if max_speakers is not None:
            definition["diarization"] = {"enabled": True, "maxSpeakers": max_speakers}
        self._definition = json.dumps(definition)
        self.attempts = attempts
        self.max_retry_delay = max_retry_delay
        self.chunk_seconds = chunk_seconds
        self.max_upload_bytes = max_upload_bytes
        self.max_upload_seconds = max_upload_seconds
        self._timeout = httpx.Timeout(request_timeout, connect=10.0)
        self._transport = transport

    def __repr__(self) -> str:
        return f"AzureSpeechTranscriber(url={self.url!r})"

    def transcribe(self, path: Path) -> Transcript:
        """Transcribes the recording at `path`, in parts when the service's limits require.

        Raises:
            BadEventError: the service rejected the audio (format, length, content).
            TransientError: 429/5xx or no connection after every attempt.
            ConfigurationError: the key or the endpoint is wrong.
        """
        path = Path(path)
        with httpx.Client(timeout=self._timeout, transport=self._transport) as client:
            if self._fits_one_request(path):
                part = self._request(client, path)
                return _transcript([(0.0, part)], split=False)
            return self._transcribe_in_parts(client, path)

    def _fits_one_request(self, path: Path) -> bool:
        if path.stat().st_size > self.max_upload_bytes:
            return False
        from speech.audio import probe_duration  # imports PyAV, needed only here

        duration = probe_duration(path)
        return duration is not None and duration <= self.max_upload_seconds

    def _transcribe_in_parts(self, client: httpx.Client, path: Path) -> Transcript:
        from speech.audio import iter_chunks  # imports PyAV, needed only here

        parts: list[tuple[float, _Part]] = []
        with tempfile.TemporaryDirectory(prefix="speech-") as scratch:
            for i, chunk in enumerate(iter_chunks(path, self.chunk_seconds)):
                flac = _write_flac(chunk.samples, Path(scratch) / f"part-{i}.flac")
                logger.info(
                    "%s: sending part %d (%.0f s from %.0f s)",
                    path.name,
                    i + 1,
                    chunk.seconds,
                    chunk.offset_seconds,
                )
                part = self._request(client, flac)
                timed = _Part(part.text, part.segments, part.language, chunk.seconds)
                parts.append((chunk.offset_seconds, timed))
                flac.unlink()
        return _transcript(parts, split=True)

    def _request(self, client: httpx.Client, audio: Path) -> _Part:
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_RetryableError),
            before_sleep=lambda state: logger.warning(
                "Azure Speech: %s; try %d of %d",
                state.outcome.exception() if state.outcome else "?",
                state.attempt_number + 1,
                self.attempts,
            ),
            reraise=True,
        )
        try:
            body = retrying(self._post, client, audio)
        except _RetryableError as e:
            message = f"Azure Speech did not answer after {self.attempts} tries: {e}"
            raise TransientError(message) from e
        return _parse(body)

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _RetryableError) and error.retry_after is not None:
            return min(max(error.retry_after, 0.0), self.max_retry_delay)
        backoff = wait_exponential_jitter(initial=1, max=self.max_retry_delay)
        return float(backoff(state))

    def _post(self, client: httpx.Client, audio: Path) -> dict[str, Any]:
        content_type = mimetypes.guess_type(audio.name)[0] or "application/octet-stream"
        with audio.open("rb") as stream:  # opened per try: a retry sends the file again
            try:
                response = client.post(
                    self.url,
                    params={"api-version": API_VERSION},
                    headers={
                        "Ocp-Apim-Subscription-Key": self._key.get_secret_value(),
                        "Accept": "application/json",
                    },
                    data={"definition": self._definition},
                    files={"audio": (audio.name, stream, content_type)},
                )
            except httpx.TransportError as e:
                raise _RetryableError(f"{type(e).__name__}: {e}") from e
        if response.status_code in _RETRY_STATUSES:
            raise _RetryableError(_describe(response), _retry_after(response))
        if response.status_code in (401, 403):
            message = f"Azure Speech refused the key: {_describe(response)}"
            raise ConfigurationError(message)
        if response.status_code == 404:
            message = f"no Azure Speech fast transcription at {self.url}: {_describe(response)}"
            raise ConfigurationError(message)
        if response.is_error:
            message = f"Azure Speech rejected {audio.name}: {_describe(response)}"
            raise BadEventError(message)
        try:
            body = response.json()
        except ValueError as e:
            raise _RetryableError(
                f"an answer that is not JSON (HTTP {response.status_code})"
            ) from e
        if not isinstance(body, dict):
            raise _RetryableError("an answer that is not a JSON object")
        return body


def _transcribe_url(endpoint: str) -> str:
    endpoint = endpoint.strip()
    if "://" in endpoint:
        return endpoint.rstrip("/") + TRANSCRIBE_PATH
    if not _REGION.match(endpoint):
        message = f"AZURE_SPEECH_ENDPOINT is neither a URL nor a region name: {endpoint!r}"
        raise ConfigurationError(message)
    return f"https://{endpoint}.api.cognitive.microsoft.com{TRANSCRIBE_PATH}"


def _parse(body: dict[str, Any]) -> _Part:
    """A fast-transcription answer: `combinedPhrases[].text`, timed `phrases[]`, duration."""
    segments = []
    locales = []
    for phrase in body.get("phrases") or []:
        text = str(phrase.get("text") or "").strip()
        if not text:
            continue
        start = float(phrase.get("offsetMilliseconds") or 0) / 1000
        end = start + float(phrase.get("durationMilliseconds") or 0) / 1000
        speaker = phrase.get("speaker")
        segments.append(Segment(start, end, text, None if speaker is None else str(speaker)))
        if phrase.get("locale"):
            locales.append(str(phrase["locale"]))
    segments.sort(key=lambda s: s.start)
    combined = [str(c.get("text") or "").strip() for c in body.get("combinedPhrases") or []]
    text = " ".join(t for t in combined if t) or " ".join(s.text for s in segments)
    duration = body.get("durationMilliseconds")
    return _Part(
        text=text,
        segments=segments,
        language=max(set(locales), key=locales.count) if locales else None,
        duration_seconds=None if duration is None else float(duration) / 1000,
    )


def _transcript(parts: list[tuple[float, _Part]], *, split: bool) -> Transcript:
    segments = []
    for i, (offset, part) in enumerate(parts, 1):
        for s in part.segments:
            speaker = s.speaker
            if speaker is not None:
                speaker = f"Speaker {speaker}" + (f" (part {i})" if split else "")
            segments.append(
                Segment(round(offset + s.start, 3), round(offset + s.end, 3), s.text, speaker)
            )
    languages = [p.language for _, p in parts if p.language]
    last_offset, last = parts[-1] if parts else (0.0, None)
    duration = None
    if last is not None and last.duration_seconds is not None:
        duration = round(last_offset + last.duration_seconds, 3)
    return Transcript(
        text=" ".join(p.text for _, p in parts if p.text),
        segments=segments,
        language=languages[0] if languages else None,
        duration_seconds=duration,
        engine=ENGINE,
    )


def _describe(response: httpx.Response) -> str:
    """HTTP status and the service's error code and message (`{"error": {"code", "message"}}`)."""
    code = response.headers.get("x-ms-error-code")
    message = ""
    try:
        error = response.json().get("error") or {}
        code = error.get("code") or code
        message = error.get("message") or ""
    except (ValueError, AttributeError):
        message = response.text[:200]
    return f"HTTP {response.status_code} {code or ''} {message}".strip()


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds the service asks to wait (`retry-after-ms` or `Retry-After`)."""
    return retry_after_seconds(response.headers)


def _write_flac(samples: Any, path: Path) -> Path:
    """16 kHz mono 16-bit FLAC of float samples in [-1, 1]."""
    import av  # PyAV: imported only when a recording must be split
    import numpy as np

    from speech.audio import SAMPLE_RATE

    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16).reshape(1, -1)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("flac", rate=SAMPLE_RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path
