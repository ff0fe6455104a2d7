"""Streams a recording (WAV, MP3, FLAC, M4A/MP4, ...) as 16 kHz mono chunks, cut in pauses.

Decoding goes packet by packet through PyAV, so memory holds one chunk and never the
whole recording. A chunk ends in the quietest stretch near its nominal end, so a word is
rarely cut in two at a boundary.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from core.exceptions import BadEventError

__all__ = ["SAMPLE_RATE", "AudioChunk", "iter_chunks", "probe_duration"]

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
# A chunk may end up to this share of chunk_seconds early to end in a pause (at most 30 s).
_SEARCH_SHARE = 0.5
_SEARCH_MAX_SECONDS = 30.0
_QUIET_WINDOW_SECONDS = 0.2
# Packets that fail to decode are skipped (damaged recordings are common); this many is too many.
_MAX_BAD_PACKETS = 50

Samples = npt.NDArray[np.float32]


@dataclass(frozen=True)
class AudioChunk:
    """Mono float32 samples at SAMPLE_RATE that start `offset_seconds` into the recording."""

    offset_seconds: float
    samples: Samples

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def probe_duration(path: Path) -> float | None:
    """The duration the container declares, without decoding; None when it declares none."""
    try:
        with av.open(str(path)) as container:
            if container.duration is not None:
                return float(container.duration) / av.time_base
            stream = container.streams.audio[0] if container.streams.audio else None
            if stream is not None and stream.duration is not None and stream.time_base:
                return float(stream.duration * stream.time_base)
    except av.FFmpegError as e:
        message = f"{path.name}: not a readable audio file ({e})"
        raise BadEventError(message) from e
    return None


def iter_chunks(path: Path, chunk_seconds: float) -> Iterator[AudioChunk]:
    """Yields the recording's audio in chunks of at most `chunk_seconds`, in order.

    Raises:
        BadEventError: the file is not audio, has no audio stream, or cannot be decoded.
    """
    if chunk_seconds <= 0:
        raise ValueError("chunk_seconds must be positive")
    chunk_samples = max(int(chunk_seconds * SAMPLE_RATE), SAMPLE_RATE)
    search_samples = int(min(chunk_seconds * _SEARCH_SHARE, _SEARCH_MAX_SECONDS) * SAMPLE_RATE)
    buffer = np.empty(chunk_samples, dtype=np.float32)
    filled = 0
    offset = 0
    for block in _decode(path):
        while len(block):
            take = min(len(block), chunk_samples - filled)
            buffer[filled : filled + take] = block[:take]
            filled += take
            block = block[take:]
            if filled < chunk_samples:
                continue
            cut = _quiet_cut(buffer, search_samples)
            rest = buffer[cut:].copy()
            yield AudioChunk(offset / SAMPLE_RATE, buffer[:cut])
            # A fresh buffer: the chunk just yielded may still be in use.
            offset += cut
            buffer = np.empty(chunk_samples, dtype=np.float32)
            buffer[: len(rest)] = rest
            filled = len(rest)
    if filled:
        yield AudioChunk(offset / SAMPLE_RATE, buffer[:filled])


def _decode(path: Path) -> Iterator[Samples]:
    """Decoded audio of the first audio stream, resampled to mono float32 at SAMPLE_RATE."""
    try:
        container = av.open(str(path))
    except av.FFmpegError as e:
        message = f"{path.name}: not a readable audio file ({e})"
        raise BadEventError(message) from e
    with container:
        if not container.streams.audio:
            message = f"{path.name}: the file has no audio stream"
            raise BadEventError(message)
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        bad_packets = 0
        decoded_any = False
        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.InvalidDataError as e:
                    bad_packets += 1
                    logger.debug("%s: skipped an undecodable packet: %s", path.name, e)
                    if bad_packets > _MAX_BAD_PACKETS:
                        message = f"{path.name}: more than {_MAX_BAD_PACKETS} damaged packets"
                        raise BadEventError(message) from e
                    continue
                for frame in frames:
                    for out in resampler.resample(frame):
                        decoded_any = True
                        yield _mono(out)
            for out in resampler.resample(None):
                decoded_any = True
                yield _mono(out)
        except (av.FFmpegError, ValueError) as e:  # ValueError: the format changed mid-stream
            message = f"{path.name}: decoding failed ({e})"
            raise BadEventError(message) from e
        if not decoded_any:
            message = f"{path.name}: the audio stream holds no decodable audio"
            raise BadEventError(message)
        if bad_packets:
            logger.warning("%s: skipped %d undecodable packets", path.name, bad_packets)


def _mono(frame: av.AudioFrame) -> Samples:
    """The frame's samples, already mono float32 by the resampler, as one flat array."""
    return frame.to_ndarray().reshape(-1).astype(np.float32, copy=False)


def _quiet_cut(samples: Samples, search_samples: int) -> int:
    """Where to end a chunk: the middle of the quietest window in its last `search_samples`."""
    end = len(samples)
    window = int(_QUIET_WINDOW_SECONDS * SAMPLE_RATE)
    if search_samples < 2 * window:
        return end
    tail = samples[end - search_samples :].astype(np.float64)
    power = np.concatenate(([0.0], np.cumsum(tail * tail)))
    energy = power[window:] - power[:-window]  # the energy of every window, in O(n)
    # The middle of the longest stretch about as quiet as the quietest window: the middle
    # of a pause, not its first sample (Whisper and the VAD want a little silence each side).
    quiet = energy <= energy.min() * 1.5 + 1e-9 * window
    edges = np.flatnonzero(np.diff(np.concatenate(([0], quiet.astype(np.int8), [0]))))
    starts, stops = edges[::2], edges[1::2]
    longest = int(np.argmax(stops - starts))
    middle = (int(starts[longest]) + int(stops[longest]) - 1) // 2
    return end - search_samples + middle + window // 2
