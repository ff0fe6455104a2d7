"""Local transcription: accuracy per format, timestamps, chunking, offline model, the runner."""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from core.exceptions import BadEventError, ConfigurationError, TransientError
from speech import Transcript, run_transcription
from speech.audio import SAMPLE_RATE, iter_chunks
from speech.whisper import WhisperTranscriber
from tests.fixtures import speech

REFERENCE = " ".join(speech.SENTENCES)
MIN_ACCURACY = 0.85


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The three sentences, 1 s of silence around each (~18 s), in every format."""
    wav = speech.speak(tmp_path_factory.mktemp("speech"), speech.SENTENCES)
    return {fmt: speech.encode(wav, fmt) for fmt in speech.FORMATS}


@pytest.fixture(scope="module")
def whisper() -> WhisperTranscriber:
    return WhisperTranscriber()


def assert_well_timed(transcript: Transcript) -> None:
    assert transcript.segments
    starts = [s.start for s in transcript.segments]
    assert starts == sorted(starts)
    assert all(0 <= s.start <= s.end for s in transcript.segments)
    assert transcript.duration_seconds is not None
    assert transcript.segments[-1].end <= transcript.duration_seconds + 0.01


@pytest.mark.parametrize("fmt", speech.FORMATS)
def test_each_format_is_transcribed_accurately_with_timestamps(
    recordings: dict[str, Path], whisper: WhisperTranscriber, fmt: str
) -> None:
    transcript = whisper.transcribe(recordings[fmt])
    assert 1 - speech.word_error_rate(REFERENCE, transcript.text) >= MIN_ACCURACY, transcript.text
    assert_well_timed(transcript)
    assert transcript.duration_seconds == pytest.approx(18.4, abs=0.2)
    assert transcript.language == "en"
    assert transcript.engine == "faster-whisper"
    assert transcript.text == " ".join(s.text for s in transcript.segments)
    assert all(s.speaker is None for s in transcript.segments)
    # Segments are the VAD's pieces of speech (up to 30 s): here one, around all three.
    spoken = speech.sentence_spans(recordings["wav"])
    assert transcript.segments[0].start == pytest.approx(spoken[0][0], abs=0.5)
    assert transcript.segments[-1].end == pytest.approx(spoken[-1][1], abs=0.5)


def test_a_recording_longer_than_a_chunk_gives_the_same_words(
    recordings: dict[str, Path], whisper: WhisperTranscriber
) -> None:
    chunks = list(iter_chunks(recordings["wav"], 8))
    assert len(chunks) == 3
    assert all(c.seconds <= 8 for c in chunks)

    whole = whisper.transcribe(recordings["wav"])
    chunked = WhisperTranscriber(chunk_seconds=8).transcribe(recordings["wav"])

    assert_well_timed(chunked)
    # A piece of speech per chunk, here a sentence each, timed from the recording's start.
    spoken = speech.sentence_spans(recordings["wav"])
    assert len(chunked.segments) == len(spoken)
    for segment, (begins, ends) in zip(chunked.segments, spoken, strict=True):
        assert segment.start == pytest.approx(begins, abs=0.5)
        assert segment.end == pytest.approx(ends, abs=0.5)
    assert chunked.duration_seconds == whole.duration_seconds
    assert 1 - speech.word_error_rate(REFERENCE, chunked.text) >= MIN_ACCURACY
    # Cut in pauses, no word is lost or doubled at a boundary. tiny.en hears a sentence on
    # its own a little differently than among others ("wants a discount" becomes "wants to
    # discount" even for that sentence alone), so up to two words may be substituted.
    assert len(speech.words(chunked.text)) == len(speech.words(whole.text))
    assert speech.word_error_rate(whole.text, chunked.text) <= 2 / len(speech.words(REFERENCE))


def test_chunks_lose_no_sample_and_end_in_pauses(recordings: dict[str, Path]) -> None:
    (whole,) = iter_chunks(recordings["flac"], 3600)
    chunks = list(iter_chunks(recordings["flac"], 8))

    assert np.array_equal(np.concatenate([c.samples for c in chunks]), whole.samples)
    offsets = [c.offset_seconds for c in chunks]
    assert offsets == [sum(c.seconds for c in chunks[:i]) for i in range(len(chunks))]
    speech_level = float(np.sqrt(np.mean(whole.samples**2)))
    for chunk in chunks[1:]:
        cut = int(chunk.offset_seconds * SAMPLE_RATE)
        around = whole.samples[cut - SAMPLE_RATE // 10 : cut + SAMPLE_RATE // 10]
        assert float(np.sqrt(np.mean(around**2))) < speech_level / 100


def test_the_bundled_model_runs_without_any_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the transcriber tried to open a connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr("faster_whisper.transcribe.download_model", no_network)
    wav = speech.speak(tmp_path, speech.SENTENCES[:1], gap_seconds=0.5)

    transcript = WhisperTranscriber().transcribe(wav)

    assert 1 - speech.word_error_rate(speech.SENTENCES[0], transcript.text) >= MIN_ACCURACY


def test_a_model_directory_without_a_model_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"model\.bin"):
        WhisperTranscriber(model_path=str(tmp_path))


@pytest.mark.parametrize(
    "content",
    [b"", b"this is a text file, not audio\n" * 20, b"\x89PNG\r\n\x1a\n" + bytes(200)],
    ids=["empty", "text", "png"],
)
def test_what_is_not_audio_is_a_bad_event(
    tmp_path: Path, whisper: WhisperTranscriber, content: bytes
) -> None:
    path = tmp_path / "recording.wav"
    path.write_bytes(content)
    with pytest.raises(BadEventError, match=r"recording\.wav"):
        whisper.transcribe(path)


async def test_the_runner_transcribes_in_a_child_while_the_loop_keeps_beating(
    recordings: dict[str, Path],
) -> None:
    beats: list[float] = []

    async def heartbeat() -> None:
        while True:
            beats.append(time.monotonic())
            await asyncio.sleep(0.02)

    beating = asyncio.create_task(heartbeat())
    try:
        transcript = await run_transcription(
            recordings["mp3"], factory=WhisperTranscriber, timeout=120
        )
    finally:
        beating.cancel()

    assert 1 - speech.word_error_rate(REFERENCE, transcript.text) >= MIN_ACCURACY
    assert_well_timed(transcript)
    assert max(b - a for a, b in itertools.pairwise(beats)) < 0.25


async def test_the_runner_kills_a_transcription_that_overruns(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    started = time.monotonic()
    with pytest.raises(BadEventError, match="longer than 3 s"):
        await run_transcription(
            tmp_path / "long.wav",
            factory=functools.partial(speech.SleepingTranscriber, pid_file),
            timeout=3,
        )
    assert time.monotonic() - started < 5
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


async def test_a_cancelled_caller_kills_its_child(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    task = asyncio.create_task(
        run_transcription(
            tmp_path / "long.wav",
            factory=functools.partial(speech.SleepingTranscriber, pid_file),
            timeout=60,
        )
    )
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text():
            break
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


async def test_the_runner_raises_the_transcribers_project_error(tmp_path: Path) -> None:
    with pytest.raises(BadEventError, match="refused on purpose"):
        await run_transcription(tmp_path / "a.wav", factory=speech.RefusingTranscriber, timeout=30)


async def test_any_other_error_becomes_a_bad_event(tmp_path: Path) -> None:
    with pytest.raises(BadEventError, match="a bug"):
        await run_transcription(tmp_path / "a.wav", factory=speech.BuggyTranscriber, timeout=30)


async def test_a_child_that_dies_is_a_transient_error(tmp_path: Path) -> None:
    with pytest.raises(TransientError, match="died without an answer"):
        await run_transcription(tmp_path / "a.wav", factory=speech.DyingTranscriber, timeout=30)


def test_silence_gives_an_empty_transcript_not_invented_words(
    tmp_path: Path, whisper: WhisperTranscriber
) -> None:
    silence = tmp_path / "silence.wav"
    subprocess.run(
        ["sox", "-n", "-r", "16000", "-c", "1", str(silence), "trim", "0", "40"], check=True
    )
    transcript = whisper.transcribe(silence)
    assert (transcript.text, transcript.segments) == ("", [])
    assert transcript.duration_seconds == 40.0
