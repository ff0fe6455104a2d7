"""A bad tenant mapping dead-letters events; once it is fixed, `dlq replay` turns them into
shards, and a second replay (or a dry run) changes nothing."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from datetime import timedelta
from pathlib import Path

from bridge.publisher import RawEventPublisher
from streams.dead_letter_records import DeadLetterSelection
from streams.dead_letter_replay import TopicReader, replay_dead_letters, replayed_positions
from streams.lag import broker_status
from tests.e2e.conftest import COMMAND, TENANT_CONFIG, Pipeline, running_pipeline
from tests.fixtures import salesforce as sf
from web.auth import issue_token

TENANT = "t-dlq"
# A replace of Salesforce Account whose required name comes from a field nobody sends.
BAD_MAPPING = """
  t-dlq:
    mappings:
      int-salesforce-1:
        provider: salesforce
        entities:
          Account:
            mode: replace
            shardType: Account
            fields: [{source: Name__NotThere, target: name, required: true}]
"""
FIXED = "\n  t-dlq: {}\n"
PREFIX = f"{TENANT}:".encode()
ACCOUNTS = ["001DLQ000000000001", "001DLQ000000000002", "001DLQ000000000003"]


def wait_for(what: str, check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def mine(pipe: Pipeline, topic: str) -> list:
    """This test's records of `topic`, read to its end (the fetch-checked end)."""

    async def read() -> list:
        async with TopicReader(pipe.broker.url, topic) as reader:
            found = [r async for r in reader.records() if (r.key or b"").startswith(PREFIX)]
        return sorted(found, key=lambda r: (r.partition, r.offset))

    return asyncio.run(read())


def committed_past(pipe: Pipeline, group: str, records: list) -> bool:
    """Whether `group` has committed past each of `records` (`status`'s figures)."""
    status = asyncio.run(broker_status(pipe.broker.url, groups=[group]))
    committed = {(g.topic, g.partition): g.committed for g in status.groups[group]}
    return all(committed.get((r.topic, r.partition), -1) > r.offset for r in records)


def run_together(pipe, *commands: list[str]) -> list[str]:
    """Run `integration-processors` commands side by side; their outputs, in order."""
    running = [
        subprocess.Popen(
            [COMMAND, *args], env=pipe.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        for args in commands
    ]
    outputs = [process.communicate(timeout=120)[0].decode() for process in running]
    assert [process.returncode for process in running] == [0] * len(running), outputs
    return outputs


def test_replay_after_the_mapping_is_fixed(tmp_path: Path, rabbitmq_url: str) -> None:
    tenants = tmp_path / "tenants.yaml"
    tenants.write_text(TENANT_CONFIG + BAD_MAPPING)
    (tmp_path / "run").mkdir()
    with running_pipeline(tmp_path / "run", rabbitmq_url, TENANT_CONFIG=str(tenants)) as pipe:
        secret, group = pipe.env["JWT_SECRET"], pipe.env["APP_ID"]
        pipe.tokens[TENANT, "u-test"] = issue_token(
            secret=secret, tenant_id=TENANT, user_id="u-test", ttl=timedelta(hours=1)
        )
        bodies = [sf.line(sf.account(TENANT, external_id)) for external_id in ACCOUNTS]

        async def publish() -> None:
            async with RawEventPublisher(
                pipe.env["RABBITMQ_URL"], queue_prefix=pipe.env["BRIDGE_QUEUE_PREFIX"]
            ) as publisher:
                await publisher.publish_many((b, "integration.raw.crm") for b in bodies)

        asyncio.run(publish())
        letters = wait_for(
            "three dead letters", lambda: len(d := mine(pipe, "integration.dlq")) == 3 and d
        )
        assert {dict(r.headers)["stage"] for r in letters} == {b"map"}
        assert pipe.shards(TENANT) == []

        # The mapping is fixed; the worker reads it at start. While it starts, the dlq
        # commands (they need the broker only) run beside it: list and a dry run, then
        # the replay, whose events wait on the raw topic for the worker.
        tenants.write_text(TENANT_CONFIG + FIXED)
        # Committed past the bad events first: the restarted worker must not read them
        # again (then the shards would not be the replay's doing).
        bad = mine(pipe, "integration.raw.crm")
        wait_for("the bad events committed", lambda: committed_past(pipe, group, bad))
        pipe.stop("worker")
        pipe.start("worker", "worker")
        listed, dry, status = run_together(
            pipe,
            ["dlq", "list", "--stage", "map", "--tenant", TENANT, "--since", "1h"],
            ["dlq", "replay", "--dry-run", "--tenant", TENANT],
            ["status", "--group", group],
        )
        assert f"\n  {group}  total lag " in status
        assert re.search(r"\n    integration\.raw\.crm  lag \d+  \d+:\d+/\d+ lag", status)
        # RabbitMQ is shared: other tests' events reach this bridge too, so only this
        # tenant's records are counted.
        assert re.search(
            f"3 of [0-9]+ dead letters match \\(stage map; tenant {TENANT}; since ", listed
        )
        assert "0 of them already replayed" in listed
        assert "map        MappingError" in listed and "integration.raw.crm" in listed
        assert "would send 3 back (integration.raw.crm 3); 0 already replayed" in dry
        assert asyncio.run(replayed_positions(pipe.broker.url)) == set()
        assert mine(pipe, "integration.raw.crm") == bad  # the dry run sent nothing

        (done,) = run_together(pipe, ["dlq", "replay", "--stage", "map", "--tenant", TENANT])
        assert "sent 3 back (integration.raw.crm 3); 0 already replayed" in done
        pipe.wait_healthy()
        shards = wait_for("three shards", lambda: len(s := pipe.shards(TENANT)) == 3 and s)
        assert {s["source"]["externalId"] for s in shards} == set(ACCOUNTS)
        raw = mine(pipe, "integration.raw.crm")
        assert sorted(r.value for r in raw) == sorted(bodies * 2)  # the original bytes again

        everything_of_tenant = DeadLetterSelection.of(tenants=[TENANT])
        again = asyncio.run(replay_dead_letters(pipe.broker.url, everything_of_tenant))
        assert (again.sent, again.already_replayed) == (0, 3)
        versions = {(s["id"], s["version"]) for s in shards}
        assert {(s["id"], s["version"]) for s in pipe.shards(TENANT)} == versions
        wait_for("the replayed events committed", lambda: committed_past(pipe, group, raw))
        assert mine(pipe, "integration.raw.crm") == raw  # nothing sent again
        assert len(mine(pipe, "integration.dlq")) == 3  # nothing failed again
