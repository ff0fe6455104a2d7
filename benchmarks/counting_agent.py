"""The ceiling for an agent: a Faust agent that only counts, on the same topic and broker.

    BROKER_URL=kafka://127.0.0.1:PORT TOPIC=integration.raw.crm EXPECT=N \
        python benchmarks/counting_agent.py worker -l warn

Prints `counted N in S s: R/s` (from its first record) and exits once it has counted
EXPECT records. Plain Faust, its defaults but for the session timeout the project uses
on the embedded broker (PLATFORM-NOTES: joins wait half of it).
"""

from __future__ import annotations

import os
import sys
import time
import uuid

import faust

app = faust.App(
    f"count-{uuid.uuid4().hex[:8]}",
    broker=os.environ["BROKER_URL"],
    value_serializer="raw",
    key_serializer="raw",
    topic_partitions=4,
    broker_session_timeout=6,
    broker_heartbeat_interval=1,
    consumer_auto_offset_reset="earliest",
    web_enabled=False,
    autodiscover=False,
)
topic = app.topic(os.environ["TOPIC"], key_type=bytes, value_type=bytes)
EXPECT = int(os.environ["EXPECT"])


@app.agent(topic)
async def count(stream: faust.StreamT[bytes]) -> None:
    n, first = 0, 0.0
    async for _ in stream:
        n += 1
        if n == 1:
            first = time.perf_counter()
        if n == EXPECT:
            elapsed = time.perf_counter() - first
            print(f"counted {n} in {elapsed:.2f} s: {(n - 1) / elapsed:.0f}/s", flush=True)
            sys.stdout.flush()
            os._exit(0)


if __name__ == "__main__":
    app.main()
