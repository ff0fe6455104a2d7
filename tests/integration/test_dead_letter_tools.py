"""`dlq list`/`replay` and `status` against the embedded broker (no worker)."""

from __future__ import annotations

import json
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from processors.embedded_broker import EmbeddedBroker
from processors.operations import format_status
from streams.admin import BrokerAdmin, bootstrap_servers
from streams.dead_letter_records import DeadLetterSelection
from streams.dead_letter_replay import (
    replay_dead_letters,
    replayed_positions,
    summarise_dead_letters,
)
from streams.dead_letters import DeadLetter
from streams.lag import broker_status
from streams.topics import DLQ_TOPIC
from tests.conftest import consume_all

CRM = "integration.raw.crm"
EMAIL = "integration.raw.email"


def envelope(tenant: str, external_id: str, data_type: str = "crm") -> bytes:
    # Spacing and key order a re-serialisation would not keep: replay must send these bytes.
    return (
        f'{{ "eventId": "e-{external_id}",  "dataType": "{data_type}", '
        f'"tenantId": "{tenant}", "externalId": "{external_id}", "payload": {{"x": 1}} }}\n'
    ).encode()


def letters() -> list[tuple[DeadLetter, bytes]]:
    made = []
    for i in range(4):
        body = envelope("t-a", f"o{i}")
        where = {"sourceTopic": CRM, "sourcePartition": "0", "sourceOffset": str(i)}
        made.append(
            (DeadLetter.of(body, f"t-a:o{i}".encode(), KeyError("Name"), "map", **where), body)
        )
    email = envelope("t-b", "m1", "email")
    made.append(
        (DeadLetter.of(email, b"t-b:m1", ValueError("bad"), "validate", sourceTopic=EMAIL), email)
    )
    bridge = envelope("t-a", "o9")
    made.append(
        (DeadLetter.of(bridge, b"t-a:o9", ValueError("x"), "bridge", routingKey=CRM), bridge)
    )
    stub = b'{"size": 99999999}'
    stand_in = DeadLetter.of(stub, None, ValueError("too big"), "bridge", routingKey=CRM)
    made.append(
        (stand_in.__class__(**{**_fields(stand_in), "error_type": "MessageTooLarge"}), stub)
    )
    return made


def _fields(letter: DeadLetter) -> dict:
    return {name: getattr(letter, name) for name in letter.__slots__}


async def put_dead_letters(url: str) -> list[tuple[DeadLetter, bytes]]:
    made = letters()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(url), linger_ms=50)
    await producer.start()
    try:
        # One batch of several records: the broker's ListOffsets answer is then wrong.
        futures = [
            await producer.send(
                DLQ_TOPIC,
                letter.wire_value(),
                key=letter.key,
                headers=letter.headers(),
                partition=0,
            )
            for letter, _ in made
        ]
        for future in futures:
            await future
    finally:
        await producer.stop()
    return made


async def test_replay_sends_the_original_bytes_once(broker: EmbeddedBroker) -> None:
    made = await put_dead_letters(broker.url)
    stored = await consume_all(bootstrap_servers(broker.url), DLQ_TOPIC, expect=len(made))
    assert json.loads(stored[0].value)["errorType"] == "KeyError"  # the reason beside the keys

    everything = await summarise_dead_letters(broker.url, DeadLetterSelection())
    assert (everything.scanned, everything.selected, everything.replayed) == (7, 7, 0)
    assert everything.by_reason["map", "KeyError", CRM] == 4
    assert everything.by_reason["bridge", "MessageTooLarge", "-"] == 1
    assert everything.by_tenant == {"t-a": 5, "t-b": 1, "-": 1}
    maps = DeadLetterSelection.of(stages=["map"], tenants=["t-a"])
    assert (await summarise_dead_letters(broker.url, maps, samples=2)).selected == 4

    dry = await replay_dead_letters(broker.url, maps, dry_run=True)
    assert (dry.selected, dry.sent) == (4, 4)
    assert await replayed_positions(broker.url) == set()

    first = await replay_dead_letters(broker.url, maps)
    assert (first.sent, first.already_replayed, first.by_topic) == (4, 0, {CRM: 4})
    crm = await consume_all(bootstrap_servers(broker.url), CRM, expect=4, timeout=10)
    assert sorted((r.key, r.value) for r in crm) == sorted(
        (letter.key, body) for letter, body in made[:4]
    )

    again = await replay_dead_letters(broker.url, maps)
    assert (again.sent, again.already_replayed) == (0, 4)

    rest = await replay_dead_letters(broker.url, DeadLetterSelection())
    assert (rest.sent, rest.already_replayed, rest.not_replayable) == (2, 4, 1)
    assert rest.by_topic == {EMAIL: 1, CRM: 1}  # the bridge's by its routing key
    after = await summarise_dead_letters(broker.url, DeadLetterSelection())
    assert after.replayed == 6
    crm = await consume_all(bootstrap_servers(broker.url), CRM, expect=5, timeout=10)
    assert len(crm) == 5


async def test_status_reports_end_offsets_and_a_known_lag(broker: EmbeddedBroker) -> None:
    topic, group = f"status-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    bootstrap = bootstrap_servers(broker.url)
    async with BrokerAdmin(broker.url) as admin:
        await admin.ensure_topics([topic], partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50)
    await producer.start()
    futures = [await producer.send(topic, b"v", partition=i % 2) for i in range(10)]  # batched
    for future in futures:
        await future
    await producer.stop()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        await consumer.commit({TopicPartition(topic, 0): 2, TopicPartition(topic, 1): 5})
    finally:
        await consumer.stop()

    status = await broker_status(broker.url)
    assert status.ends[topic] == {0: 5, 1: 5}
    assert status.topic_lag(group, topic) == 3  # 5-2 on partition 0, none on partition 1
    assert [(g.partition, g.committed, g.end, g.lag) for g in status.groups[group]] == [
        (0, 2, 5, 3),
        (1, 5, 5, 0),
    ]
    text = format_status(status)
    assert f"{topic}  [2 partitions, 10 records]  0:5 1:5" in text
    assert f"{topic}  lag 3  0:2/5 lag 3 1:5/5 lag 0" in text
    only = await broker_status(broker.url, groups=[group])
    assert list(only.groups) == [group]
