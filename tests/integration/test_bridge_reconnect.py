"""The bridge rides out a lost RabbitMQ connection and a paused broker, losing nothing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import aiormq
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from prometheus_client import REGISTRY

from bridge.bridge import Bridge, connection_name
from bridge.publisher import RawEventPublisher
from processors.embedded_broker import EmbeddedBroker, free_port
from tests.fixtures import generic_email, salesforce
from tests.integration.test_bridge import queue_depth, settings

#: Seconds the broker is paused (SIGSTOP ... SIGCONT); `TEST_BROKER_PAUSE` overrides it
#: (15 s is enough to stall every write; more than the producer's 30 s request timeout
#: makes its requests time out, so the bridge resends batches).
BROKER_PAUSE = float(os.environ.get("TEST_BROKER_PAUSE", "30"))


def bridge_connections(pid: int) -> list[str]:
    """The Erlang pids of the RabbitMQ connections the bridge in process `pid` has open."""
    out = subprocess.run(
        ["rabbitmqctl", "list_connections", "pid", "client_properties", "-q", "--no-table-headers"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    wanted = json.dumps(["connection_name", connection_name(pid)], separators=(",", ":"))
    wanted = "{" + wanted[1:-1] + "}"  # as rabbitmqctl prints it: {"connection_name","..."}
    return [line.split("\t", 1)[0] for line in out.splitlines() if wanted in line]


def close_connection(connection_pid: str) -> None:
    """What an operator (or a RabbitMQ node going down) does to a client."""
    subprocess.run(
        ["rabbitmqctl", "close_connection", connection_pid, "test"],
        check=True,
        timeout=60,
        capture_output=True,
    )


def reconnects(peer: str) -> float:
    """`integration_reconnects_total{component="bridge", peer=...}` in this process."""
    labels = {"component": "bridge", "peer": peer}
    return REGISTRY.get_sample_value("integration_reconnects_total", labels) or 0.0


def broker_pid(broker: EmbeddedBroker) -> int:
    """The process id of the embedded broker listening on `broker.port`."""
    listener = f"tcp://127.0.0.1:{broker.port}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--listener-url" in args and listener in args:
            return int(proc.name)
    raise AssertionError(f"no broker process listens on {listener.decode()}")


class Outage:
    """A TCP proxy in front of RabbitMQ that can vanish (connections cut, port closed) and
    come back: a RabbitMQ restart or a network loss, without touching the shared server."""

    def __init__(self, rabbitmq_url: str, target: int = 5672) -> None:
        self.port = free_port()
        self._vhost = rabbitmq_url.rpartition("/")[2]
        self._target = target
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/{self._vhost}"

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)

    async def down(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream = await asyncio.open_connection("127.0.0.1", self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, upstream}

        async def copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except OSError:
                pass
            finally:
                sink.transport.abort()

        await asyncio.gather(copy(reader, upstream), copy(upstream_reader, writer))


async def wait_until(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def event_ids(
    bootstrap: str, topic: str, tenant: str, expected: set[str], timeout: float = 60.0
) -> list[str]:
    """The eventIds of `tenant` on `topic`, read until all of `expected` are there (or the
    timeout). Other tenants' events are left out: whatever anyone publishes to
    `integration.events` reaches every bound queue, this test's included."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    ids: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while not expected <= set(ids) and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                ids.extend(of_tenant(records, tenant))
        # Whatever else is already there (duplicates) counts too.
        for records in (await consumer.getmany(timeout_ms=500)).values():
            ids.extend(of_tenant(records, tenant))
    finally:
        await consumer.stop()
    return ids


def of_tenant(records: list[ConsumerRecord], tenant: str) -> list[str]:
    mine = [r for r in records if (r.key or b"").startswith(f"{tenant}:".encode())]
    return [json.loads(r.value)["eventId"] for r in mine]


def events(tenant: str, crm: int, email: int, start: int = 0) -> tuple[list[bytes], list[bytes]]:
    """`crm` Salesforce accounts and `email` generic emails, each with its own eventId."""
    accounts = [
        salesforce.line(salesforce.account(tenant, f"001{i:06d}"))
        for i in range(start, start + crm)
    ]
    emails = []
    for i in range(start, start + email):
        envelope = generic_email.email("a@example.com", ["b@example.com"], external_id=f"m-{i}")
        envelope["tenantId"] = tenant
        envelope["eventId"] = f"evt-{tenant}-email-{i}"
        emails.append(json.dumps(envelope).encode())
    return accounts, emails


def ids_of(lines: list[bytes]) -> set[str]:
    return {json.loads(line)["eventId"] for line in lines}


async def publish_in_chunks(
    publisher: RawEventPublisher, lines: list[bytes], chunk: int = 100, pause: float = 0.02
) -> None:
    """A steady stream rather than one burst, so the connection drops mid-stream."""
    for i in range(0, len(lines), chunk):
        await publisher.publish_events(lines[i : i + chunk])
        await asyncio.sleep(pause)


def interleave(a: list[bytes], b: list[bytes]) -> list[bytes]:
    out = []
    for i in range(max(len(a), len(b))):
        out.extend(x[i] for x in (a, b) if i < len(x))
    return out


async def drained(rabbitmq_url: str, prefix: str) -> bool:
    depths = [await queue_depth(rabbitmq_url, f"{prefix}.{t}") for t in ("crm", "email")]
    return depths == [0, 0]


async def test_a_closed_rabbitmq_connection_is_reconnected_and_nothing_is_lost(
    broker, rabbitmq_url, queue_prefix
) -> None:
    tenant = f"t-{queue_prefix}"
    accounts, emails = events(tenant, crm=1500, email=500)
    config = settings(rabbitmq_url, queue_prefix).model_copy(
        update={"BRIDGE_BATCH_SIZE": 100, "BRIDGE_PREFETCH": 500}
    )
    lines = interleave(accounts, emails)
    before = reconnects("rabbitmq")
    async with RawEventPublisher(rabbitmq_url, queue_prefix=queue_prefix) as publisher:
        # A backlog first, so deliveries wait in the bridge's inbox when the connection drops.
        await publisher.publish_events(lines[:1000])
        async with Bridge(config, broker.url) as bridge:
            running = asyncio.create_task(bridge.wait_closed())
            (first,) = await asyncio.to_thread(bridge_connections, os.getpid())
            publishing = asyncio.create_task(publish_in_chunks(publisher, lines[1000:]))
            await wait_until("the first events forwarded", lambda: bridge.forwarded >= 200)
            await asyncio.to_thread(close_connection, first)
            await publishing
            await wait_until("the reconnection", lambda: bridge.reconnects >= 1)
            crm = await event_ids(broker.bootstrap, "integration.raw.crm", tenant, ids_of(accounts))
            email = await event_ids(
                broker.bootstrap, "integration.raw.email", tenant, ids_of(emails)
            )
            for _ in range(100):
                if await drained(rabbitmq_url, queue_prefix):
                    break
                await asyncio.sleep(0.1)
            assert await drained(rabbitmq_url, queue_prefix)
            (second,) = await asyncio.to_thread(bridge_connections, os.getpid())
            assert not running.done()
            # One reconnection only: an old delivery tag acknowledged on the new channel would
            # have closed it (PRECONDITION_FAILED) and forced a second one.
            assert bridge.reconnects == 1
    assert second != first
    assert set(crm) == ids_of(accounts)
    assert set(email) == ids_of(emails)
    assert reconnects("rabbitmq") - before == 1
    print(  # the figures for the decisions (pytest -s)
        f"reconnect: {len(accounts) + len(emails)} events, {len(crm) + len(email)} records, "
        f"{bridge.abandoned} deliveries left to redelivery, forwarded {bridge.forwarded}"
    )


async def test_a_batch_in_flight_when_the_connection_drops_is_not_acknowledged_later(
    broker, rabbitmq_url, queue_prefix, caplog
) -> None:
    """The broker is held (SIGSTOP) while RabbitMQ drops the bridge, so a batch is being
    written and the inbox is full at the drop: both must be left to RabbitMQ's redelivery."""
    tenant = f"t-{queue_prefix}"
    accounts, emails = events(tenant, crm=800, email=200)
    config = settings(rabbitmq_url, queue_prefix).model_copy(
        update={"BRIDGE_BATCH_SIZE": 100, "BRIDGE_PREFETCH": 500}
    )
    pid = broker_pid(broker)
    lines = interleave(accounts, emails)
    caplog.set_level("INFO", logger="bridge.bridge")
    async with (
        Bridge(config, broker.url) as bridge,
        RawEventPublisher(rabbitmq_url, queue_prefix=queue_prefix) as publisher,
    ):
        running = asyncio.create_task(bridge.wait_closed())
        (first,) = await asyncio.to_thread(bridge_connections, os.getpid())
        await publisher.publish_events(lines[:100])
        await wait_until("the first events forwarded", lambda: bridge.forwarded >= 100)
        os.kill(pid, signal.SIGSTOP)
        try:
            await publisher.publish_events(lines[100:])
            await asyncio.sleep(1)  # a batch waits for the broker; the prefetch fills the inbox
            held = bridge.forwarded
            await asyncio.to_thread(close_connection, first)
            await wait_until("the reconnection", lambda: bridge.reconnects >= 1)
            await asyncio.sleep(0.5)  # redeliveries arrive on the new channel meanwhile
        finally:
            os.kill(pid, signal.SIGCONT)
        crm = await event_ids(broker.bootstrap, "integration.raw.crm", tenant, ids_of(accounts))
        email = await event_ids(broker.bootstrap, "integration.raw.email", tenant, ids_of(emails))
        for _ in range(100):
            if await drained(rabbitmq_url, queue_prefix):
                break
            await asyncio.sleep(0.1)
        assert await drained(rabbitmq_url, queue_prefix)
        assert not running.done()
        assert bridge.reconnects == 1  # no stale tag reached the new channel
    assert set(crm) == ids_of(accounts)
    assert set(email) == ids_of(emails)
    # The batch in flight (written after the drop, never acknowledged) and the inbox's
    # deliveries of the old channel were all left to redelivery.
    messages = [r.getMessage() for r in caplog.records]
    assert sum("written but not acknowledged (its channel closed)" in m for m in messages) == 1
    assert sum(m.startswith("dropped ") for m in messages) == 1
    assert bridge.abandoned > config.BRIDGE_BATCH_SIZE
    print(
        f"in flight: {len(accounts) + len(emails)} events, {len(crm) + len(email)} records, "
        f"{held} forwarded before the drop, {bridge.abandoned} left to redelivery"
    )


async def test_a_paused_broker_delays_the_bridge_and_loses_nothing(
    broker, rabbitmq_url, queue_prefix
) -> None:
    tenant = f"t-{queue_prefix}"
    before_pause, _ = events(tenant, crm=200, email=0)
    during, emails = events(tenant, crm=800, email=200, start=200)
    after, _ = events(tenant, crm=200, email=0, start=1000)
    accounts = before_pause + during + after
    kafka_before = reconnects("kafka")
    pid = broker_pid(broker)
    async with Bridge(settings(rabbitmq_url, queue_prefix), broker.url) as bridge:
        running = asyncio.create_task(bridge.wait_closed())
        async with RawEventPublisher(rabbitmq_url, queue_prefix=queue_prefix) as publisher:
            await publisher.publish_events(before_pause)
            await wait_until("the first events forwarded", lambda: bridge.forwarded >= 200)
            os.kill(pid, signal.SIGSTOP)
            paused, forwarded = time.monotonic(), bridge.forwarded
            try:
                await publish_in_chunks(publisher, interleave(during, emails))
                await asyncio.sleep(BROKER_PAUSE - (time.monotonic() - paused))
                assert not running.done()
                assert bridge.forwarded == forwarded  # nothing got through
            finally:
                os.kill(pid, signal.SIGCONT)
            await publisher.publish_events(after)
        crm = await event_ids(broker.bootstrap, "integration.raw.crm", tenant, ids_of(accounts))
        email = await event_ids(broker.bootstrap, "integration.raw.email", tenant, ids_of(emails))
        landed = time.monotonic() - paused
        for _ in range(100):
            if await drained(rabbitmq_url, queue_prefix):
                break
            await asyncio.sleep(0.1)
        assert await drained(rabbitmq_url, queue_prefix)
        assert not running.done()
        assert bridge.reconnects == 0
    assert set(crm) == ids_of(accounts)
    assert set(email) == ids_of(emails)
    kafka = reconnects("kafka") - kafka_before
    print(
        f"pause {BROKER_PAUSE:.0f} s: {len(accounts) + len(emails)} events, "
        f"{len(crm) + len(email)} records, {kafka:.0f} batches resent after failures, "
        f"{landed:.1f} s from SIGSTOP to all landed"
    )


async def test_rabbitmq_gone_for_seconds_is_retried_with_backoff(
    broker, rabbitmq_url, queue_prefix, caplog
) -> None:
    tenant = f"t-{queue_prefix}"
    accounts, emails = events(tenant, crm=800, email=200)
    lines = interleave(accounts, emails)
    outage = Outage(rabbitmq_url)
    await outage.up()
    config = settings(outage.url, queue_prefix).model_copy(update={"RECONNECT_MAX_DELAY": 1.0})
    caplog.set_level("INFO", logger="bridge.bridge")
    async with (
        Bridge(config, broker.url) as bridge,
        RawEventPublisher(rabbitmq_url, queue_prefix=queue_prefix) as publisher,
    ):
        running = asyncio.create_task(bridge.wait_closed())
        await publisher.publish_events(lines[:500])
        await wait_until("the first events forwarded", lambda: bridge.forwarded >= 100)
        await outage.down()
        try:
            await publisher.publish_events(lines[500:])
            await asyncio.sleep(4)
            assert not running.done()
            assert bridge.reconnects == 0
        finally:
            await outage.up()
        await wait_until("the reconnection", lambda: bridge.reconnects >= 1)
        crm = await event_ids(broker.bootstrap, "integration.raw.crm", tenant, ids_of(accounts))
        email = await event_ids(broker.bootstrap, "integration.raw.email", tenant, ids_of(emails))
        for _ in range(100):
            if await drained(rabbitmq_url, queue_prefix):
                break
            await asyncio.sleep(0.1)
        assert await drained(rabbitmq_url, queue_prefix)
        assert not running.done()
        assert bridge.reconnects == 1
    await outage.down()
    assert set(crm) == ids_of(accounts)
    assert set(email) == ids_of(emails)
    failed = [r for r in caplog.records if r.getMessage().startswith("reconnecting to RabbitMQ")]
    waits = [float(r.args[2]) for r in failed]
    assert len(failed) >= 3  # immediately, then 0.5 s, 1 s, 1 s ... (capped)
    assert max(waits) <= config.RECONNECT_MAX_DELAY
    assert waits[1] > waits[0] * 1.2
    print(f"outage 4 s: {len(failed)} failed attempts, waits {[round(w, 2) for w in waits]}")


async def test_a_bridge_that_cannot_reach_rabbitmq_at_start_raises(broker) -> None:
    config = settings(f"amqp://guest:guest@127.0.0.1:{free_port()}/", "test-unreachable")
    bridge = Bridge(config, broker.url)
    with pytest.raises((OSError, aiormq.AMQPError)):
        await bridge.start()
    await bridge.stop()  # already stopped by the failed start: a no-op
