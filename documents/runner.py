"""Runs `extract` in a child process per file: a hung or runaway file is killed, not the worker.

The child is forked from a forkserver that has the readers (pymupdf, python-docx,
calamine, Pillow) imported already, so a file costs a fork, not an interpreter start.
It runs in its own process group with an address-space limit; at the deadline the whole
group (the child and any `tesseract` it started) is killed with SIGKILL.

As with every start method but fork, children import the program's main module: a script
that uses the runner must guard its entry point with `if __name__ == "__main__":`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import pickle
import resource
import signal
import struct
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Final, Literal

from documents.extract import (
    DocumentKind,
    Extraction,
    ExtractionLimits,
    ExtractionStatus,
    extract,
)
from documents.formats.sniff import hinted_kind
from documents.ocr import OcrEngine, OcrUnavailableError

__all__ = ["ExtractionRunner", "OcrFactory", "StartMethod", "run_extraction"]

logger = logging.getLogger(__name__)

#: builds the OCR engine inside the child; must pickle (a class, a `functools.partial`, ...)
OcrFactory = Callable[[], OcrEngine]
StartMethod = Literal["forkserver", "spawn"]

_HEADER: Final = struct.Struct("!Q")
_PRELOAD: Final = [
    # What the worker's main module imports: every child re-runs the main module, which
    # is cheap only when its imports are already loaded in the forkserver (Faust: ~1 s
    # a file without this, ~10 ms with it). Python 3.11's forkserver does not preload
    # "__main__" itself (it never receives the main path), so the name is spelled out.
    "processors.cli",
    "documents.extract",
    "documents.formats.pdf",
    "documents.formats.word",
    "documents.formats.sheet",
    "documents.formats.image",
    "documents.formats.plain",
    "documents.ocr",
]
_EXIT_GRACE: Final = 5.0


@dataclass(frozen=True, slots=True)
class _Job:
    path: str
    content_type: str | None
    file_name: str | None
    limits: ExtractionLimits
    ocr_factory: OcrFactory | None


async def run_extraction(
    path: Path,
    *,
    content_type: str | None,
    file_name: str | None,
    limits: ExtractionLimits,
    ocr_factory: OcrFactory | None,
    timeout: float,  # noqa: ASYNC109 - the child is killed at it; a cancelled await would not
    semaphore: asyncio.Semaphore | None = None,
    start_method: StartMethod = "forkserver",
) -> Extraction:
    """`extract` the file in a child process, killed after `timeout` seconds.

    `semaphore` bounds how many children run at once (see `ExtractionRunner`).

    Raises:
        OSError: the file cannot be read at all.
        OcrUnavailableError: the OCR engine is unavailable; try the file again later.
    """
    job = _Job(str(path), content_type, file_name, limits, ocr_factory)
    if semaphore is None:
        return await _run_child(job, timeout, start_method)
    async with semaphore:
        return await _run_child(job, timeout, start_method)


class ExtractionRunner:
    """Extraction with one configuration and at most `concurrency` children at a time."""

    def __init__(
        self,
        *,
        limits: ExtractionLimits,
        ocr_factory: OcrFactory | None,
        timeout: float,
        concurrency: int = 2,
        start_method: StartMethod = "forkserver",
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        self.limits = limits
        self.ocr_factory = ocr_factory
        self.timeout = timeout
        self.concurrency = concurrency
        self.start_method: StartMethod = start_method
        self._semaphore = asyncio.Semaphore(concurrency)

    async def warm_up(self) -> None:
        """Start the forkserver and its imports now, so the first file does not wait for them."""
        await _start_and_reap(_context(self.start_method).Process(target=_warm, daemon=True))

    async def run(
        self, path: Path, *, content_type: str | None, file_name: str | None
    ) -> Extraction:
        """Extract one file (see `run_extraction`)."""
        return await run_extraction(
            path,
            content_type=content_type,
            file_name=file_name,
            limits=self.limits,
            ocr_factory=self.ocr_factory,
            timeout=self.timeout,
            semaphore=self._semaphore,
            start_method=self.start_method,
        )


def _warm() -> None:
    """A child that does nothing: its start brings the forkserver up."""


async def _start_and_reap(process: BaseProcess) -> None:
    await _start(process)
    await _reap(process)


def _context(start_method: StartMethod) -> ForkServerContext | SpawnContext:
    if start_method == "spawn":
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # Takes effect when the forkserver starts, i.e. on the first child.
    context.set_forkserver_preload(_PRELOAD)
    return context


async def _run_child(
    job: _Job,
    timeout: float,  # noqa: ASYNC109 - see run_extraction
    start_method: StartMethod,
) -> Extraction:
    context = _context(start_method)
    reader_end, writer_end = context.Pipe(duplex=False)
    process = context.Process(
        target=_child_main, args=(writer_end, job), name="document-extraction", daemon=True
    )
    deadline = asyncio.get_running_loop().time() + timeout
    try:
        await _start(process)
    except BaseException:
        reader_end.close()
        raise
    finally:
        writer_end.close()  # the child holds the only writer now: its exit is our end of file
    answer: _Answer = "timeout"
    try:
        answer = await _receive(reader_end, deadline)
    finally:
        reader_end.close()
        if answer == "timeout":  # also when this task is cancelled
            _kill_group(process)
        exit_code = await _reap(process)
    return _outcome(answer, exit_code, job, timeout)


async def _start(process: BaseProcess) -> None:
    """Start the child in a thread: a forkserver start blocks until the fork is done.

    The first start also waits for the forkserver to import the readers (about 0.5 s),
    which `ExtractionRunner.warm_up` moves to start-up.
    """
    loop = asyncio.get_running_loop()
    starting = loop.run_in_executor(None, process.start)
    try:
        await asyncio.shield(starting)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await starting
        if process.pid is not None:
            _kill_group(process)
            await _reap(process)
        raise


#: the child's message, or why there is none
_Answer = tuple[str, Any] | Literal["timeout", "died"]


async def _receive(connection: Connection, deadline: float) -> _Answer:
    """The child's one message, "died" when it exited without one, or "timeout"."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(os.dup(connection.fileno()), "rb")
    )
    try:
        async with asyncio.timeout_at(deadline):
            header = await reader.readexactly(_HEADER.size)
            body = await reader.readexactly(_HEADER.unpack(header)[0])
    except TimeoutError:
        return "timeout"
    except asyncio.IncompleteReadError:
        return "died"
    finally:
        transport.close()
    message: tuple[str, Any] = pickle.loads(body)  # noqa: S301 - from our own child process
    return message


def _kill_group(process: BaseProcess) -> None:
    """SIGKILL the child's process group: the child and whatever it started."""
    pid = process.pid
    if pid is None:
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        # The child had not made its own group yet, so it has started nothing either.
        with contextlib.suppress(ProcessLookupError):
            process.kill()


async def _reap(process: BaseProcess) -> int | None:
    """Wait, without blocking the loop, until the child has exited (killed if it lingers).

    Returns:
        Its exit code (negative: the signal that ended it).
    """
    loop = asyncio.get_running_loop()
    exited = loop.create_future()

    def on_exit() -> None:
        if not exited.done():
            exited.set_result(None)

    sentinel = process.sentinel
    loop.add_reader(sentinel, on_exit)
    try:
        async with asyncio.timeout(_EXIT_GRACE):
            await exited
    except TimeoutError:
        _kill_group(process)
    finally:
        loop.remove_reader(sentinel)
    process.join(timeout=1)
    exit_code = process.exitcode
    if exit_code is not None:
        pid = process.pid
        process.close()
        if pid is not None:  # a child that died mid-OCR may leave its `tesseract` behind
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
    return exit_code


def _outcome(answer: _Answer, exit_code: int | None, job: _Job, timeout: float) -> Extraction:
    kind = hinted_kind(job.content_type, job.file_name) or "binary"
    if answer == "timeout":
        logger.warning("extraction of %r stopped after %g s", job.file_name, timeout)
        reason = f"extraction took longer than {timeout:g} s and was stopped"
        return _without_text("timeout", reason, kind)
    if answer == "died":
        logger.warning("extraction of %r died (%s)", job.file_name, _exit_text(exit_code))
        if exit_code == -signal.SIGKILL:
            reason = "the extraction process was killed, most likely out of memory"
            return _without_text("too_large", reason, kind)
        reason = f"the extraction process died ({_exit_text(exit_code)})"
        return _without_text("corrupt", reason, kind)
    tag, payload = answer
    if tag == "ok":
        extraction: Extraction = payload
        return extraction
    if tag == "unavailable":
        raise OcrUnavailableError(str(payload))
    if tag == "oserror":
        number, text = payload
        raise OSError(number, text)
    return _without_text("corrupt", f"the extraction failed: {payload}", kind)


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    return f"exit code {code}"


def _without_text(status: ExtractionStatus, reason: str, kind: DocumentKind) -> Extraction:
    return Extraction(
        text="", truncated=False, status=status, reason=reason, metadata={}, ocr_pages=0, kind=kind
    )


def _child_main(connection: Connection, job: _Job) -> None:
    """In the child: own process group, bounded memory, extract, send one message."""
    os.setpgid(0, 0)
    if job.limits.max_memory_bytes is not None:
        limit = job.limits.max_memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    message: tuple[str, Any]
    try:
        ocr = job.ocr_factory() if job.ocr_factory is not None else None
        extraction = extract(
            Path(job.path),
            content_type=job.content_type,
            file_name=job.file_name,
            limits=job.limits,
            ocr=ocr,
        )
        extraction.peak_rss_kb = _peak_rss_kb()
        message = ("ok", extraction)
    except OcrUnavailableError as e:
        message = ("unavailable", str(e))
    except OSError as e:
        message = ("oserror", (e.errno or 0, str(e)))
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which decides
        message = ("failed", f"{type(e).__name__}: {e}"[:500])
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    with os.fdopen(os.dup(connection.fileno()), "wb") as out:
        out.write(_HEADER.pack(len(body)))
        out.write(body)
    connection.close()


def _peak_rss_kb() -> int:
    """Peak resident memory of the child, or of a process it waited for (`tesseract`).

    The child's own peak is its address space's high-water mark (`VmHWM`): `ru_maxrss`
    would also count the parent's size at the moment of a spawn, which exec keeps.
    """
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return max(int(line.split()[1]), children)
    except (OSError, ValueError, IndexError):
        pass
    return max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, children)
