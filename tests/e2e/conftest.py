"""The whole pipeline as separate processes: embedded broker, bridge and worker commands."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from processors.embedded_broker import EmbeddedBroker, free_port
from tests.conftest import delete_queues

COMMAND = str(Path(sys.executable).parent / "integration-processors")

#: The tenants the fixtures use, with the internal domain of the samples.
TENANT_CONFIG = """
tenants:
  t-northwind: {internalDomains: [northwind-sales.com], timeZone: America/Chicago}
  t-demo: {internalDomains: [northwind-sales.com]}
  t-ml: {internalDomains: [northwind-sales.com], timeZone: Europe/Berlin}
"""


@dataclass
class Pipeline:
    """Running processes of one test module, and how to talk to them."""

    env: dict[str, str]
    data_dir: Path
    broker: EmbeddedBroker
    port: int
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(
        self, name: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start `integration-processors ARGS` as `name`; `env` overrides settings."""
        log = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [COMMAND, *args], env={**self.env, **(env or {})}, stdout=log, stderr=log
        )
        self.processes[name] = process
        return process

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def stop(self, name: str, timeout: float = 30) -> int:
        """SIGTERM; the process stays listed until it has exited (`kill` still works)."""
        process = self.processes[name]
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout)
        del self.processes[name]
        return code

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [COMMAND, *args], env=self.env, capture_output=True, check=True, timeout=120
        )
        return done.stdout.decode()

    def token(self, tenant: str, user: str = "u-test") -> str:
        """A token from the `token` command (once per tenant and user)."""
        if (tenant, user) not in self.tokens:
            self.tokens[tenant, user] = self.run(
                "token", "--tenant", tenant, "--user", user
            ).strip()
        return self.tokens[tenant, user]

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            worker = self.processes.get("worker")
            if worker is not None and worker.poll() is not None:
                break
            time.sleep(0.2)
        log = (self.logs / "worker.log").read_text(errors="replace")[-4000:]
        pytest.fail(f"the worker did not become healthy:\n{log}")

    def shards(self, tenant: str, **params: str) -> list[dict]:
        headers = {"Authorization": f"Bearer {self.token(tenant)}"}
        items: list[dict] = []
        cursor = None
        while True:
            query = {"limit": "500", **params, **({"cursor": cursor} if cursor else {})}
            answer = httpx.get(f"{self.base_url}/api/v1/shards", params=query, headers=headers)
            answer.raise_for_status()
            body = answer.json()
            items.extend(body["items"])
            cursor = body["nextCursor"]
            if not cursor:
                return items


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, rabbitmq_url: str) -> Iterator[Pipeline]:
    with running_pipeline(tmp_path_factory.mktemp("pipeline"), rabbitmq_url) as pipe:
        yield pipe


@contextlib.contextmanager
def running_pipeline(data_dir: Path, rabbitmq_url: str, **settings: str) -> Iterator[Pipeline]:
    """Broker, bridge and an `all` worker on their own data folder; `settings` added to env."""
    logs = data_dir / "logs"
    logs.mkdir()
    run_id = uuid.uuid4().hex[:10]
    with EmbeddedBroker() as broker:
        port = free_port()
        tenants = data_dir / "tenants.yaml"
        tenants.write_text(TENANT_CONFIG)
        env = {
            **os.environ,
            "BROKER_URL": broker.url,
            "RABBITMQ_URL": rabbitmq_url,
            "DATA_DIR": str(data_dir / "data"),
            "PORT": str(port),
            "APP_ID": f"e2e-{run_id}",
            "BRIDGE_QUEUE_PREFIX": f"e2e-{run_id}",
            "CONSUMER_TYPE": "all",
            "JWT_SECRET": "e2e-secret-e2e-secret-e2e-secret-e2e-secret",
            "LOG_LEVEL": "info",
            "TENANT_CONFIG": str(tenants),
            "JWT_LEEWAY": "2",
            **settings,
        }
        pipe = Pipeline(env=env, data_dir=data_dir, broker=broker, port=port, logs=logs)
        pipe.start("bridge", "bridge")
        pipe.start("worker", "worker")
        pipe.wait_healthy()
        try:
            yield pipe
        finally:
            for name in list(pipe.processes):
                try:
                    pipe.stop(name)
                except subprocess.TimeoutExpired:
                    pipe.kill(name)
            asyncio.run(delete_queues(rabbitmq_url, f"e2e-{run_id}"))
