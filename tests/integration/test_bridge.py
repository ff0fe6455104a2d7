"""The bridge against the machine's RabbitMQ and the embedded broker."""

from __future__ import annotations

import asyncio
import json

import aiormq

from bridge.bridge import Bridge
from bridge.publisher import RawEventPublisher
from core.settings import Settings
from tests.conftest import consume_all
from tests.fixtures import salesforce as sf


def settings(rabbitmq_url: str, prefix: str) -> Settings:
    return Settings(
        RABBITMQ_URL=rabbitmq_url,
        BRIDGE_QUEUE_PREFIX=prefix,
        BRIDGE_BATCH_WINDOW=0.02,
        BRIDGE_STOP_TIMEOUT=2,
    )


async def queue_depth(rabbitmq_url: str, queue: str) -> int:
    connection = await aiormq.connect(rabbitmq_url)
    channel = await connection.channel()
    ok = await channel.queue_declare(queue, passive=True)
    await connection.close()
    return int(ok.message_count or 0)


async def test_events_reach_their_topic_keyed_and_bad_ones_the_dlq(
    broker, rabbitmq_url, queue_prefix
) -> None:
    tenant = f"t-{queue_prefix}"
    good = [sf.account(tenant), sf.contact(tenant), sf.opportunity(tenant)]
    no_tenant = sf.account(tenant, "001BAD")
    del no_tenant["tenantId"]
    async with Bridge(settings(rabbitmq_url, queue_prefix), broker.url):
        async with RawEventPublisher(rabbitmq_url, queue_prefix=queue_prefix) as publisher:
            await publisher.publish_many(
                [
                    (sf.line(good[0]), "integration.raw.crm"),
                    (b"{this is not json", "integration.raw.crm"),
                    (json.dumps(no_tenant).encode(), "integration.raw.crm"),
                    (sf.line(sf.contact(tenant, "003MIS")), "integration.raw.email"),
                    (sf.line(good[1]), "integration.raw.crm"),
                    (sf.line(good[2]), "integration.raw.crm"),
                ]
            )
        raw = await consume_all(broker.bootstrap, "integration.raw.crm", expect=3)
        dlq = await consume_all(broker.bootstrap, "integration.dlq", expect=3)
        for _ in range(50):
            if await queue_depth(rabbitmq_url, f"{queue_prefix}.crm") == 0:
                break
            await asyncio.sleep(0.1)
        assert await queue_depth(rabbitmq_url, f"{queue_prefix}.crm") == 0
        assert await queue_depth(rabbitmq_url, f"{queue_prefix}.email") == 0

    assert sorted(r.key for r in raw) == sorted(
        f"{tenant}:{e['externalId']}".encode() for e in good
    )
    assert sorted(json.loads(r.value)["eventId"] for r in raw) == sorted(e["eventId"] for e in good)
    reasons = {}
    for record in dlq:
        headers = {k: v.decode() for k, v in record.headers}
        assert {"error", "errorType", "stage", "failedAt", "routingKey"} <= headers.keys()
        assert headers["stage"] == "bridge"
        reasons[headers["routingKey"]] = [*reasons.get(headers["routingKey"], []), headers["error"]]
    assert len(dlq) == 3
    crm_reasons = " | ".join(reasons["integration.raw.crm"])
    assert "not valid JSON" in crm_reasons
    assert "tenantId: Field required" in crm_reasons
    assert "does not match routing key" in reasons["integration.raw.email"][0]
    mismatch = next(
        json.loads(r.value) for r in dlq if r.value.startswith(b"{") and b"003MIS" in r.value
    )
    assert mismatch["externalId"] == "003MIS"
    assert mismatch["stage"] == "bridge"


async def test_one_entitys_events_keep_their_order(broker, rabbitmq_url, queue_prefix) -> None:
    tenant = f"t-{queue_prefix}"
    updates = [
        sf.opportunity(tenant, stage=f"Stage {i}", occurred_at=f"2026-11-02T09:{i:02d}:00Z")
        for i in range(60)
    ]
    async with Bridge(settings(rabbitmq_url, queue_prefix), broker.url):
        async with RawEventPublisher(rabbitmq_url, queue_prefix=queue_prefix) as publisher:
            await publisher.publish_events(sf.line(u) for u in updates)
        raw = await consume_all(broker.bootstrap, "integration.raw.crm", expect=60)
    stages = [json.loads(r.value)["payload"]["StageName"] for r in raw]
    assert stages == [f"Stage {i}" for i in range(60)]
    assert len({r.partition for r in raw}) == 1


async def test_nothing_is_acknowledged_while_the_broker_is_down(
    broker, rabbitmq_url, queue_prefix
) -> None:
    tenant = f"t-{queue_prefix}"
    bridge = Bridge(settings(rabbitmq_url, queue_prefix), broker.url)
    await bridge.start()
    try:
        broker.stop()
        async with RawEventPublisher(rabbitmq_url, queue_prefix=queue_prefix) as publisher:
            await publisher.publish_events(sf.line(sf.account(tenant, f"001{i}")) for i in range(5))
        await asyncio.sleep(2)
        assert bridge.forwarded == 0
    finally:
        await bridge.stop()
    # Unacknowledged deliveries return to the queue when the bridge goes away.
    for _ in range(50):
        if await queue_depth(rabbitmq_url, f"{queue_prefix}.crm") == 5:
            break
        await asyncio.sleep(0.1)
    assert await queue_depth(rabbitmq_url, f"{queue_prefix}.crm") == 5


async def test_a_message_too_large_for_the_stream_is_parked_in_rabbitmq(
    broker, rabbitmq_url, queue_prefix
) -> None:
    tenant = f"t-{queue_prefix}"
    big = sf.account(tenant, f"001BIG{queue_prefix}")
    big["payload"]["Description"] = "x" * 5000
    small = sf.account(tenant, "001SMALL")
    config = settings(rabbitmq_url, queue_prefix).model_copy(
        update={"BRIDGE_MAX_MESSAGE_BYTES": 4096}
    )
    async with Bridge(config, broker.url):
        async with RawEventPublisher(rabbitmq_url, queue_prefix=queue_prefix) as publisher:
            await publisher.publish_events([sf.line(big), sf.line(small)])
        raw = await consume_all(broker.bootstrap, "integration.raw.crm", expect=1)
        dlq = await consume_all(broker.bootstrap, "integration.dlq", expect=1)
    assert [json.loads(r.value)["externalId"] for r in raw] == ["001SMALL"]
    (letter,) = dlq
    headers = {k: v.decode() for k, v in letter.headers}
    assert headers["errorType"] == "MessageTooLarge"
    assert "integration-processors.dead-letters" in headers["error"]
    assert json.loads(letter.value)["size"] == len(sf.line(big))
    connection = await aiormq.connect(rabbitmq_url)
    channel = await connection.channel()
    parked = []
    while (got := await channel.basic_get("integration-processors.dead-letters")).body:
        parked.append(got.body)
        await channel.basic_ack(got.delivery.delivery_tag)
        if got.body == sf.line(big):
            break
    await connection.close()
    assert sf.line(big) in parked
