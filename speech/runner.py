"""Runs a transcriber in a child process of its own, so the caller's event loop stays free.

One process per recording, killed when it overruns its time limit. A pool would save the
model load (~0.7 s for tiny.en, ~2 s with imports), but a pool cannot stop one task: a
running future ignores `cancel()`, and killing its worker breaks every other task of the
pool. A process of its own also returns its memory to the system when it ends and keeps
a crash in native code (decoder, CTranslate2) away from the worker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.exceptions import BadEventError, ProcessorsError, TransientError
from speech.transcribe import Transcriber, Transcript

__all__ = ["TranscriberFactory", "run_transcription"]

logger = logging.getLogger(__name__)

TranscriberFactory = Callable[[], Transcriber]
"""Builds the transcriber inside the child; it must pickle (a class, a functools.partial)."""

_CHILD_COMMAND = "from speech.runner import serve_one; serve_one()"


async def run_transcription(
    path: Path,
    *,
    factory: TranscriberFactory,
    timeout: float,  # noqa: ASYNC109 - a limit on the child's life: it is killed, not abandoned
) -> Transcript:
    """Transcribes `path` with `factory()` in a child process, waiting at most `timeout` s.

    The child is killed on timeout and when the caller is cancelled.

    Raises:
        BadEventError: the recording cannot be transcribed, or took longer than `timeout`.
        TransientError: the child died without an answer (killed, out of memory, crashed).
        ProcessorsError: what the transcriber raised, as it raised it.
    """
    request = pickle.dumps((factory, Path(path), logging.getLogger().getEffectiveLevel()))
    # The child finds the same modules as this process (the factory may live anywhere).
    search_path = [p or os.getcwd() for p in sys.path]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(search_path)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CHILD_COMMAND,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        reply, _ = await asyncio.wait_for(process.communicate(request), timeout)
    except TimeoutError as e:
        message = f"transcription of {Path(path).name} took longer than {timeout:g} s"
        raise BadEventError(message) from e
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
            logger.warning("killed transcription process %d for %s", process.pid, path)
    return _result(reply, process.returncode, Path(path))


def _result(reply: bytes, returncode: int | None, path: Path) -> Transcript:
    if not reply:
        message = f"the transcription of {path.name} died without an answer (exit {returncode})"
        raise TransientError(message)
    try:
        # The bytes come from our own child process over its stdout pipe, never from input.
        outcome, value, child_traceback = pickle.loads(reply)  # noqa: S301
    except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError) as e:
        message = f"the transcription process for {path.name} sent an unreadable answer"
        raise TransientError(message) from e
    if outcome == "ok":
        transcript: Transcript = value
        return transcript
    logger.debug("transcription of %s failed in the child:\n%s", path.name, child_traceback)
    if isinstance(value, ProcessorsError):
        raise value
    # Anything else is unexpected, and a replay from the dead-letter topic can repeat it.
    message = f"transcription of {path.name} failed: {value}"
    raise BadEventError(message) from value


def serve_one() -> None:
    """The child: reads (factory, path, log level) from stdin, writes the outcome to stdout."""
    # Whatever a library prints goes to stderr; the outcome travels on a copy of stdout.
    reply_fd = os.dup(1)
    os.dup2(2, 1)
    factory, path, level = pickle.load(sys.stdin.buffer)  # noqa: S301 - our parent's request
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    reply: tuple[str, Any, str]
    try:
        reply = ("ok", factory().transcribe(path), "")
    except Exception as e:  # noqa: BLE001 - every failure is reported to the parent
        reply = ("error", e, traceback.format_exc())
    try:
        data = pickle.dumps(reply)
        pickle.loads(data)  # noqa: S301 - an exception that pickles may still not unpickle
    except Exception:  # noqa: BLE001 - any failure of the round trip means: send a plain error
        plain = ProcessorsError(f"{type(reply[1]).__name__}: {reply[1]}")
        data = pickle.dumps(("error", plain, reply[2]))
    with os.fdopen(reply_fd, "wb") as out:
        out.write(data)
