"""The Azure Speech transcriber against a local server speaking fast transcription's format.

The server checks what the service checks (path, `api-version`, key header, multipart parts
`audio` and `definition`) and answers like the service: `durationMilliseconds`,
`combinedPhrases[].text`, `phrases[]` with offsets, durations, locale and, with
diarization, `speaker`; errors as `{"error": {"code", "message"}}` with `x-ms-error-code`.
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import pytest
from aiohttp import BodyPartReader, web

from core.exceptions import BadEventError, ConfigurationError, TransientError
from speech import run_transcription
from speech.audio import iter_chunks
from speech.azure import API_VERSION, AzureSpeechTranscriber
from tests.fixtures import speech

KEY = "fake-speech-key"
PATH = "/speechtotext/transcriptions:transcribe"

Answer = Callable[["Received"], web.Response]


@dataclass
class Received:
    """One request as the fake service saw it."""

    at: float
    definition: dict[str, Any]
    audio: bytes
    filename: str | None


@dataclass
class FakeSpeechService:
    """Answers with `answers` in turn (the last one repeats) and records every request."""

    url: str = ""
    answers: list[Answer] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)

    async def transcribe(self, request: web.Request) -> web.Response:
        if request.query.get("api-version") != API_VERSION:
            return error(400, "InvalidApiVersion", "unsupported api-version")
        if request.headers.get("Ocp-Apim-Subscription-Key") != KEY:
            return error(401, "Unauthorized", "Access denied due to invalid subscription key.")
        if not request.content_type.startswith("multipart/form-data"):
            return error(415, "UnsupportedMediaType", "multipart/form-data expected")
        fields: dict[str, tuple[bytes, str | None]] = {}
        reader = await request.multipart()
        async for part in reader:
            assert isinstance(part, BodyPartReader)
            fields[part.name or ""] = (await part.read(), part.filename)
        if "audio" not in fields or "definition" not in fields:
            return error(400, "InvalidRequest", "audio and definition are required")
        received = Received(
            at=time.monotonic(),
            definition=json.loads(fields["definition"][0]),
            audio=fields["audio"][0],
            filename=fields["audio"][1],
        )
        self.received.append(received)
        answer = self.answers[min(len(self.received), len(self.answers)) - 1]
        return answer(received)


def error(status: int, code: str, message: str, **headers: str) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message}},
        status=status,
        headers={"x-ms-error-code": code, **headers},
    )


def phrase(offset_ms: int, duration_ms: int, text: str, speaker: int | None) -> dict[str, Any]:
    words = text.split()
    step = duration_ms // len(words)
    body: dict[str, Any] = {
        "channel": 0,
        "offsetMilliseconds": offset_ms,
        "durationMilliseconds": duration_ms,
        "text": text,
        "words": [
            {"text": w, "offsetMilliseconds": offset_ms + i * step, "durationMilliseconds": step}
            for i, w in enumerate(words)
        ],
        "locale": "en-US",
        "confidence": 0.93616915,
    }
    if speaker is not None:
        body["speaker"] = speaker
    return body


def diarized(received: Received) -> web.Response:
    """The three sentences, the middle one by a second speaker."""
    speakers = [1, 0, 1] if received.definition.get("diarization") else [None] * 3
    phrases = [
        phrase(1000 + 6000 * i, 5000, text, speakers[i]) for i, text in enumerate(speech.SENTENCES)
    ]
    return web.json_response(
        {
            "durationMilliseconds": 18424,
            "combinedPhrases": [{"channel": 0, "text": " ".join(speech.SENTENCES)}],
            "phrases": phrases,
        }
    )


def per_part(received: Received) -> web.Response:
    """For split recordings: one phrase 0.5 s into whatever audio arrived."""
    with av.open(io.BytesIO(received.audio)) as container:
        stream = container.streams.audio[0]
        assert (stream.codec_context.name, stream.rate, stream.channels) == ("flac", 16000, 1)
        duration_ms = round(float(container.duration or 0) / av.time_base * 1000)
    return web.json_response(
        {
            "durationMilliseconds": duration_ms,
            "combinedPhrases": [{"channel": 0, "text": "Part."}],
            "phrases": [phrase(500, 1000, "Part.", 0)],
        }
    )


@pytest.fixture
async def service() -> AsyncIterator[FakeSpeechService]:
    fake = FakeSpeechService()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post(PATH, fake.transcribe)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.url = f"http://127.0.0.1:{port}"
    yield fake
    await runner.cleanup()


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return speech.recording(tmp_path_factory.mktemp("azure"), "mp3")


def transcriber(service: FakeSpeechService, **options: Any) -> AzureSpeechTranscriber:
    return AzureSpeechTranscriber(service.url, KEY, **options)


async def test_a_diarized_transcript_in_the_services_format(
    service: FakeSpeechService, recording: Path
) -> None:
    service.answers = [diarized]
    transcript = await asyncio.to_thread(transcriber(service, max_speakers=4).transcribe, recording)

    (sent,) = service.received
    assert sent.audio == recording.read_bytes()
    assert sent.filename == recording.name
    assert sent.definition == {
        "locales": ["en-US"],
        "diarization": {"enabled": True, "maxSpeakers": 4},
    }
    assert transcript.text == " ".join(speech.SENTENCES)
    assert [(s.start, s.end, s.speaker) for s in transcript.segments] == [
        (1.0, 6.0, "Speaker 1"),
        (7.0, 12.0, "Speaker 0"),
        (13.0, 18.0, "Speaker 1"),
    ]
    assert [s.text for s in transcript.segments] == list(speech.SENTENCES)
    assert transcript.language == "en-US"
    assert transcript.duration_seconds == 18.424
    assert transcript.engine == "azure-speech"


async def test_without_diarization_segments_name_no_speaker(
    service: FakeSpeechService, recording: Path
) -> None:
    service.answers = [diarized]
    transcript = await asyncio.to_thread(
        transcriber(service, max_speakers=None).transcribe, recording
    )
    assert "diarization" not in service.received[0].definition
    assert all(s.speaker is None for s in transcript.segments)


async def test_429_is_retried_after_the_time_the_service_asks_for(
    service: FakeSpeechService, recording: Path
) -> None:
    service.answers = [
        lambda _: error(429, "TooManyRequests", "Rate limit exceeded.", **{"Retry-After": "1"}),
        diarized,
    ]
    transcript = await asyncio.to_thread(transcriber(service).transcribe, recording)

    first, second = service.received
    assert 1.0 <= second.at - first.at < 3.0
    assert second.audio == first.audio == recording.read_bytes()
    assert transcript.text == " ".join(speech.SENTENCES)


async def test_5xx_is_retried_and_then_transient(
    service: FakeSpeechService, recording: Path
) -> None:
    service.answers = [lambda _: error(503, "ServiceUnavailable", "Try again later.")]
    busy = transcriber(service, attempts=3, max_retry_delay=0.05)
    with pytest.raises(TransientError, match=r"after 3 tries.*503"):
        await asyncio.to_thread(busy.transcribe, recording)
    assert len(service.received) == 3


async def test_a_500_then_an_answer_succeeds(service: FakeSpeechService, recording: Path) -> None:
    service.answers = [lambda _: error(500, "InternalServerError", "oops"), diarized]
    flaky = transcriber(service, max_retry_delay=0.05)
    transcript = await asyncio.to_thread(flaky.transcribe, recording)
    assert len(service.received) == 2
    assert len(transcript.segments) == 3


async def test_rejected_audio_is_a_bad_event(service: FakeSpeechService, recording: Path) -> None:
    service.answers = [lambda _: error(400, "InvalidAudioFormat", "The audio is not supported.")]
    with pytest.raises(BadEventError, match="InvalidAudioFormat"):
        await asyncio.to_thread(transcriber(service).transcribe, recording)
    assert len(service.received) == 1


async def test_a_wrong_key_is_a_configuration_error(
    service: FakeSpeechService, recording: Path
) -> None:
    wrong = AzureSpeechTranscriber(service.url, "not-the-key")
    with pytest.raises(ConfigurationError, match="refused the key"):
        await asyncio.to_thread(wrong.transcribe, recording)
    assert repr(wrong).count("not-the-key") == 0


async def test_no_answer_at_all_is_transient(recording: Path) -> None:
    closed = AzureSpeechTranscriber("http://127.0.0.1:9", KEY, attempts=2, max_retry_delay=0.01)
    with pytest.raises(TransientError, match="ConnectError"):
        await asyncio.to_thread(closed.transcribe, recording)


async def test_a_recording_over_the_limits_is_sent_in_parts(
    service: FakeSpeechService, tmp_path: Path
) -> None:
    service.answers = [per_part]
    wav = speech.speak(tmp_path, speech.SENTENCES)
    split = transcriber(service, max_upload_seconds=10, chunk_seconds=8)

    transcript = await asyncio.to_thread(split.transcribe, wav)

    assert len(service.received) == 3
    assert all(r.filename and r.filename.endswith(".flac") for r in service.received)
    offsets = [c.offset_seconds for c in iter_chunks(wav, 8)]
    assert [s.start for s in transcript.segments] == [round(o + 0.5, 3) for o in offsets]
    assert [s.speaker for s in transcript.segments] == [
        "Speaker 0 (part 1)",
        "Speaker 0 (part 2)",
        "Speaker 0 (part 3)",
    ]
    assert transcript.duration_seconds == pytest.approx(18.42, abs=0.05)


async def test_the_runner_drives_the_azure_transcriber_in_a_child(
    service: FakeSpeechService, recording: Path
) -> None:
    service.answers = [diarized]
    factory = functools.partial(AzureSpeechTranscriber, service.url, KEY)
    transcript = await run_transcription(recording, factory=factory, timeout=60)
    assert transcript.segments[1].speaker == "Speaker 0"


def test_a_region_name_is_enough() -> None:
    assert AzureSpeechTranscriber("westeurope", KEY).url == (
        "https://westeurope.api.cognitive.microsoft.com/speechtotext/transcriptions:transcribe"
    )
    with pytest.raises(ConfigurationError):
        AzureSpeechTranscriber("west europe!", KEY)
    with pytest.raises(ConfigurationError):
        AzureSpeechTranscriber("westeurope", "")
