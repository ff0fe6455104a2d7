"""Azurite (the Azure Blob Storage emulator from npm), installed on demand and run per session.

The package is installed once into `.cache/azurite` under the repository root (ignored by
git through `.cache/.gitignore`). On Node 20 the newest Azurite that runs is 3.35.x, and
it refuses the API version `azure-storage-blob` 12.31 sends unless started with
`--skipApiVersionCheck`.
"""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path
from types import TracebackType

from tests.integration.node_server import NodeServer, npm_install

__all__ = ["ACCOUNT_KEY", "ACCOUNT_NAME", "AZURITE_VERSION", "Azurite", "install_azurite"]

AZURITE_VERSION = "3.35.0"
ACCOUNT_NAME = "devstoreaccount1"
#: The emulator's well-known key (public, documented by Microsoft); not a secret.
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache" / "azurite"

_LISTENING = re.compile(r"Blob service successfully listens on (http://\S+)")


def install_azurite(cache: Path = CACHE_DIR, version: str = AZURITE_VERSION) -> Path:
    """The blob server's entry point, after `npm install azurite@<version>` if it is missing."""
    main = npm_install(cache, "azurite", version) / "dist" / "src" / "blob" / "main.js"
    if not main.is_file():
        message = f"npm installed azurite@{version} but {main} is missing"
        raise RuntimeError(message)
    return main


class Azurite:
    """One Azurite blob server on a free port, memory only; `stop()` is safe twice."""

    def __init__(self, *, startup_timeout: float = 60.0) -> None:
        self._server = NodeServer("Azurite", startup_timeout=startup_timeout)
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self.url = ""

    @property
    def blob_endpoint(self) -> str:
        """`http://127.0.0.1:PORT/devstoreaccount1`, the account's blob endpoint."""
        return f"{self.url.rstrip('/')}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};"
            f"AccountKey={ACCOUNT_KEY};BlobEndpoint={self.blob_endpoint};"
        )

    def start(self) -> Azurite:
        main = install_azurite()
        # Azurite may write debug or extent files into its working folder: give it its own.
        self._workdir = tempfile.TemporaryDirectory(prefix="azurite-")
        args = [
            str(main),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            "0",
            "--skipApiVersionCheck",
            "--inMemoryPersistence",
            "--silent",
            "--disableTelemetry",
            "--extentMemoryLimit",
            "256",
        ]
        try:
            match = self._server.start(args, _LISTENING, cwd=Path(self._workdir.name))
        except RuntimeError:
            self.stop()
            raise
        self.url = match.group(1).rstrip("/")
        return self

    def stop(self) -> None:
        self._server.stop()
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# Install and start once, to time it: python -m tests.integration.azurite
if __name__ == "__main__":
    started = time.monotonic()
    install_azurite()
    installed = time.monotonic()
    with Azurite() as azurite:
        print(f"install {installed - started:.1f} s, start {time.monotonic() - installed:.1f} s")
        print(azurite.url)
