"""The compose file's bridge and workers, started on this machine as the file says.

`docker-compose config` resolves the file with an operator's environment; each processor
service then runs as a process with the service's command and environment. Only what one
host cannot share with containers is mapped: the compose host names `redpanda:9092` and
`rabbitmq:5672` become the embedded broker and the machine's RabbitMQ; `PORT`,
`BRIDGE_METRICS_PORT` free ports; `DATA_DIR` a folder per service; a mounted config's
target its source file. `APP_ID` and `BRIDGE_QUEUE_PREFIX` are added so that concurrent
runs on the shared RabbitMQ do not meet. The store and the blob storage come from the
environment, as in deployment: SQLite in a temporary folder (one host) and Azurite.

The second test is the per-topic scaling test: the light worker (every light agent but
email) and the email pool (email alone, its own consumer group) side by side.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from bridge.publisher import RawEventPublisher
from processors.embedded_broker import EmbeddedBroker, free_port
from shards.ids import shard_id
from tests.compose import DEPLOYMENT_ENV, compose_config
from tests.conftest import delete_queues
from tests.e2e.conftest import COMMAND, Pipeline
from tests.fixtures import generic_email
from tests.fixtures import salesforce as sf
from tests.integration.azurite import Azurite
from web.auth import issue_token

pytestmark = pytest.mark.e2e

LIGHT, POOL, HEAVY = "integration-processors-light", "email-pool", "integration-processors-heavy"
WORKERS = (LIGHT, POOL, HEAVY)
READY_TIMEOUT = 60.0


@dataclass
class Stack:
    """The compose services running as processes; `pipeline` talks to the light worker."""

    pipeline: Pipeline
    services: dict[str, dict[str, Any]]
    envs: dict[str, dict[str, str]]
    tenant: str
    prefix: str
    rabbitmq_url: str

    def port(self, name: str) -> int:
        return int(self.envs[name]["PORT"])


def service_process(
    name: str, service: dict[str, Any], hosts: dict[str, str], folder: Path, run_id: str
) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of a compose service on this host."""
    command = list(service.get("command") or [])
    if command[:1] != ["integration-processors"]:
        pytest.fail(f"{name}: command {command} does not run integration-processors")
    env: dict[str, str] = {}
    for key, value in (service.get("environment") or {}).items():
        if value is None:
            continue
        for compose_host, local in hosts.items():
            value = value.replace(compose_host, local)
        env[key] = value
    for key in ("PORT", "BRIDGE_METRICS_PORT"):
        if key in env:
            env[key] = str(free_port())
    if "DATA_DIR" in env:
        env["DATA_DIR"] = str(folder / name)
    for mount in service.get("configs") or []:
        source = hosts[f"config:{mount['source']}"]
        env = {k: source if v == mount["target"] else v for k, v in env.items()}
    env |= {"APP_ID": f"compose-{run_id}", "BRIDGE_QUEUE_PREFIX": f"compose-{run_id}"}
    return [COMMAND, *command[1:]], env


def healthcheck(service: dict[str, Any]) -> list[str]:
    """The service's healthcheck command, run by this interpreter."""
    test = list(service["healthcheck"]["test"])
    assert test[:2] == ["CMD", "python"], test
    return [sys.executable, *test[2:]]


def wait_ready(stack_pipeline: Pipeline, name: str, port: int, deadline: float) -> None:
    """Until the worker's /ready answers 200; fails with its log if it exits or never does."""
    process = stack_pipeline.processes[name]
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    log = (stack_pipeline.logs / f"{name}.log").read_text(errors="replace")[-3000:]
    state = "exited" if process.poll() is not None else "never ready"
    pytest.fail(f"{name} {state} (as the compose file starts it):\n{log}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, rabbitmq_url: str) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("compose")
    run_id = uuid.uuid4().hex[:10]
    tenant = f"t-compose-{run_id}"
    tenants = folder / "tenants.yaml"
    tenants.write_text(f"tenants:\n  {tenant}: {{internalDomains: [northwind-sales.com]}}\n")
    rabbit = urlsplit(rabbitmq_url)
    with EmbeddedBroker() as broker, Azurite() as azurite:
        operator_env = {
            **DEPLOYMENT_ENV,
            "RABBITMQ_USER": rabbit.username or "guest",
            "RABBITMQ_PASSWORD": rabbit.password or "guest",
            "STORE_URL": f"sqlite:///{folder / 'shards.sqlite3'}",
            "AZURE_BLOB_CONNECTION_STRING": azurite.connection_string,
            "TENANT_CONFIG_FILE": str(tenants),
        }
        config = compose_config(operator_env)
        hosts = {
            "redpanda:9092": urlsplit(broker.url).netloc,
            # the session's own virtual host (tests/conftest.py) in place of the default one
            "rabbitmq:5672/": f"{rabbit.hostname}:{rabbit.port or 5672}{rabbit.path or '/'}",
            "rabbitmq:5672": f"{rabbit.hostname}:{rabbit.port or 5672}",
            **{f"config:{k}": v["file"] for k, v in config.get("configs", {}).items()},
        }
        services = config["services"]
        base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME")}
        pipe = Pipeline(env=base, data_dir=folder, broker=broker, port=0, logs=folder / "logs")
        pipe.logs.mkdir()
        envs: dict[str, dict[str, str]] = {}
        try:
            for name in ("bridge", *WORKERS):
                argv, env = service_process(name, services[name], hosts, folder, run_id)
                envs[name] = env
                pipe.start(name, *argv[1:], env=env)
            pipe.port = int(envs[LIGHT]["PORT"])
            pipe.tokens[tenant, "u-test"] = issue_token(
                secret=envs[LIGHT]["JWT_SECRET"],
                tenant_id=tenant,
                user_id="u-test",
                ttl=timedelta(hours=1),
            )
            deadline = time.monotonic() + READY_TIMEOUT
            for name in WORKERS:
                wait_ready(pipe, name, int(envs[name]["PORT"]), deadline)
            yield Stack(pipe, services, envs, tenant, f"compose-{run_id}", rabbitmq_url)
        finally:
            stop_all(pipe)
            asyncio.run(delete_queues(rabbitmq_url, f"compose-{run_id}"))


def stop_all(pipe: Pipeline) -> None:
    """SIGTERM every process at once (they stop in parallel), then kill what outlives it."""
    for process in pipe.processes.values():
        process.send_signal(signal.SIGTERM)
    for name, process in list(pipe.processes.items()):
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        del pipe.processes[name]


def test_the_bridge_and_workers_start_as_the_compose_file_says(stack: Stack) -> None:
    checks = {
        name: subprocess.Popen(
            healthcheck(stack.services[name]),
            env={**stack.pipeline.env, **stack.envs[name]},
            stderr=subprocess.PIPE,
        )
        for name in ("bridge", *WORKERS)
    }
    for name, check in checks.items():
        _, stderr = check.communicate(timeout=30)
        assert check.returncode == 0, f"{name}: healthcheck failed: {stderr!r}"
    agents = {
        name: set(httpx.get(f"http://127.0.0.1:{stack.port(name)}/health").json()["agents"])
        for name in WORKERS
    }
    assert agents[POOL] == {"process_emails"}
    assert "process_emails" not in agents[LIGHT]
    assert {"process_crm_records", "link_activities", "ml_fields"} <= agents[LIGHT]
    assert agents[HEAVY] == {"process_documents", "process_meetings"}


def test_the_email_pool_and_the_light_worker_share_the_work(stack: Stack) -> None:
    """CRM records and emails together: every shard is written, the emails by the pool and
    linked by the light worker to the contact; neither worker stalls the other."""
    t = stack.tenant
    crm = [sf.account(t), sf.contact(t), sf.opportunity(t)]
    emails = []
    for n in range(20):
        email = generic_email.email(
            "priya.raman@fabrikam-logistics.com",
            ["dan.ortiz@northwind-sales.com"],
            external_id=f"msg-compose-{n}",
        )
        email["tenantId"] = t
        emails.append(email)

    async def publish() -> None:
        async with RawEventPublisher(stack.rabbitmq_url, queue_prefix=stack.prefix) as p:
            await p.publish_events(sf.line(e) for e in [*crm, *emails])

    asyncio.run(publish())
    contact = shard_id(t, "salesforce", "Contact", sf.CONTACT_ID)

    def settled() -> list[dict[str, Any]] | None:
        shards = stack.pipeline.shards(t)
        mails = [s for s in shards if s["shardType"] == "Email"]
        linked = [m for m in mails if any(k["targetShardId"] == contact for k in m["links"])]
        return shards if len(mails) == len(emails) and len(linked) == len(emails) else None

    deadline = time.monotonic() + 45
    shards = None
    while shards is None and time.monotonic() < deadline:
        shards = settled()
        time.sleep(0.3)
    assert shards is not None, "the emails were not all written and linked in 45 s"
    assert {s["shardType"] for s in shards} >= {"Account", "Contact", "Opportunity", "Email"}

    def processed(name: str, agent: str) -> float:
        text = httpx.get(f"http://127.0.0.1:{stack.port(name)}/metrics").text
        prefix = f'integration_events_processed_total{{agent="{agent}"'
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(prefix))  # fmt: skip

    assert processed(POOL, "email") >= len(emails)
    assert processed(LIGHT, "email") == 0
    assert processed(LIGHT, "crm") >= len(crm)
