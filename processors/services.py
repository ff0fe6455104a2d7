"""Long-running commands as mode services, so a signal stops them after their cleanup.

Faust runs a command's coroutine under a mode worker that cancels it on SIGTERM and
does not wait; a service's `on_stop` is awaited instead, so the bridge acknowledges
its batch in flight and `dev` stops its children before the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys

from mode import Service

from bridge.bridge import Bridge
from core.exceptions import ProcessorsError
from core.settings import Settings
from processors.embedded_broker import EmbeddedBroker

__all__ = ["BridgeService", "DevService"]

logger = logging.getLogger(__name__)


class BridgeService(Service):
    """The bridge for as long as the process runs.

    Start-up fails (the process exits non-zero) when RabbitMQ or the broker cannot be
    reached; after that the bridge reconnects by itself, and the service crashes only
    when the bridge's sender or reconnection task fails.
    """

    def __init__(self, settings: Settings, broker_url: str) -> None:
        super().__init__()
        self.bridge = Bridge(settings, broker_url)

    async def on_start(self) -> None:
        await self.bridge.start()
        self.add_future(self._watch())

    async def _watch(self) -> None:
        try:
            await self.bridge.wait_closed()
        except Exception as e:  # noqa: BLE001  # whatever stopped the bridge crashes the service
            if not self.should_stop:
                await self.crash(e)

    async def on_stop(self) -> None:
        await self.bridge.stop()


class DevService(Service):
    """The embedded broker, a bridge and an `all` worker, as child processes."""

    def __init__(self, settings: Settings, child_timeout: float = 30.0) -> None:
        super().__init__()
        self._settings = settings
        self._broker = EmbeddedBroker(None, settings.broker_url_file)
        self._processes: list[asyncio.subprocess.Process] = []
        self._child_timeout = child_timeout

    async def on_start(self) -> None:
        self._broker.start()
        env = {**os.environ, "BROKER_URL": self._broker.url, "CONSUMER_TYPE": "all"}
        # The embedded broker keeps nothing across restarts, so neither may the tables:
        # a RocksDB table ahead of an empty changelog stops Faust's recovery.
        env.setdefault("TABLE_STORE", "memory://")
        for args in (["bridge"], ["worker"]):
            self._processes.append(
                await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "processors.cli", *args, env=env
                )
            )
        logger.info(
            "dev: broker %s, bridge and worker started; web on http://127.0.0.1:%d",
            self._broker.url,
            self._settings.PORT,
        )
        self.add_future(self._watch())

    async def _watch(self) -> None:
        await asyncio.wait(
            [asyncio.ensure_future(c.wait()) for c in self._processes],
            return_when=asyncio.FIRST_COMPLETED,
        )
        if not self.should_stop:
            await self.crash(ProcessorsError("a dev process ended; stopping the others"))

    async def on_stop(self) -> None:
        for child in self._processes:
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signal.SIGTERM)
        for child in self._processes:
            try:
                await asyncio.wait_for(child.wait(), self._child_timeout)
            except TimeoutError:
                child.kill()
                await child.wait()
        self._broker.stop()
