"""The Cosmos DB emulator (`@vercel/cosmosdb-server` from npm), installed on demand and run
per session through our launcher (`cosmosdb_launcher.js`, which patches its gaps).

The package is installed once into `.cache/cosmosdb-server` under the repository root
(ignored by git through `.cache/.gitignore`), pinned: the launcher patches its internals.
HTTPS with a self-signed certificate (clients skip verification); memory only.
"""

from __future__ import annotations

import contextlib
import json
import re
import ssl
import time
import urllib.request
from pathlib import Path
from types import TracebackType

from tests.integration.node_server import NodeServer, npm_install

__all__ = [
    "COSMOSDB_SERVER_VERSION",
    "COSMOS_KEY",
    "CosmosDbServer",
    "drop_database",
    "install_cosmosdb_server",
]

COSMOSDB_SERVER_VERSION = "1.0.1"
#: The Cosmos DB emulator's well-known key (public, documented by Microsoft); the server
#: does not check it but the SDK needs valid base64.
COSMOS_KEY = (
    "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIM/Jw=="
)
REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache" / "cosmosdb-server"
LAUNCHER = Path(__file__).with_name("cosmosdb_launcher.js")

_READY = re.compile(r"Ready to accept HTTPS connections at (\S+):(\d+)")


def install_cosmosdb_server(
    cache: Path = CACHE_DIR, version: str = COSMOSDB_SERVER_VERSION
) -> Path:
    """The npm prefix holding the server, after `npm install` if it is missing."""
    npm_install(cache, "@vercel/cosmosdb-server", version)
    return cache


class CosmosDbServer:
    """One emulator on a free port, memory only; `stop()` is safe twice."""

    def __init__(self, *, startup_timeout: float = 60.0) -> None:
        self._server = NodeServer("the Cosmos DB emulator", startup_timeout=startup_timeout)
        self.host = ""
        self.port = 0

    @property
    def endpoint(self) -> str:
        """`https://127.0.0.1:PORT/`, the account endpoint for the SDK."""
        return f"https://{self.host}:{self.port}/"

    def store_url(self, database: str) -> str:
        """The `STORE_URL` of one database on this server."""
        return f"cosmos://{self.host}:{self.port}/{database}"

    def throttle(self, count: int, retry_after_ms: int = 5) -> None:
        """Answer the next `count` document requests 429 with this retry-after (launcher hook)."""
        request = urllib.request.Request(  # https to our own local server
            f"{self.endpoint}_test/throttle",
            data=json.dumps({"count": count, "retryAfterMs": retry_after_ms}).encode(),
            method="POST",
        )
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with urllib.request.urlopen(request, context=context, timeout=10) as answer:
            answer.read()

    def start(self) -> CosmosDbServer:
        prefix = install_cosmosdb_server()
        match = self._server.start([str(LAUNCHER), str(prefix)], _READY)
        self.host, self.port = match.group(1), int(match.group(2))
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> CosmosDbServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


async def drop_database(store_url: str) -> None:
    """Delete the database a `cosmos://host:port/database` URL names (gone already: fine)."""
    # The SDK only here: every test session imports this module through tests/conftest.py.
    from azure.cosmos.aio import CosmosClient
    from azure.cosmos.exceptions import CosmosResourceNotFoundError

    host_port, database = store_url.removeprefix("cosmos://").split("/", 1)
    async with CosmosClient(
        f"https://{host_port}/", credential=COSMOS_KEY, connection_verify=False
    ) as client:
        with contextlib.suppress(CosmosResourceNotFoundError):
            await client.delete_database(database)


# Install and start once, to time it: python -m tests.integration.cosmosdb
if __name__ == "__main__":
    started = time.monotonic()
    install_cosmosdb_server()
    installed = time.monotonic()
    with CosmosDbServer() as server:
        print(f"install {installed - started:.1f} s, start {time.monotonic() - installed:.1f} s")
        print(server.endpoint)
