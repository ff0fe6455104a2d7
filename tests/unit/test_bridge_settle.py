"""The bridge's acknowledgements when the channel goes away under them (issue 11).

aiormq fails the pending acks of a channel that closes meanwhile with a bare `Exception`
(its future store's `reject_all(None)`): seen in the suite ending the bridge in the middle
of a RabbitMQ outage. The batch is left unacknowledged (RabbitMQ redelivers it) instead.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from bridge.bridge import Bridge


class ClosingChannel:
    is_closed = False

    def __init__(self) -> None:
        self.acks: list[int] = []

    async def basic_ack(self, tag: int, multiple: bool = False) -> None:
        self.acks.append(tag)
        raise Exception  # noqa: TRY002  # exactly what aiormq sets on the drain future

    async def basic_nack(self, tag: int, requeue: bool = True) -> None:
        raise AssertionError("nothing oversize here")


async def test_an_ack_failed_by_a_closing_channel_leaves_the_batch_for_redelivery() -> None:
    bridge: Any = Bridge.__new__(Bridge)
    bridge.abandoned = 0
    channel = ClosingChannel()
    batch = [SimpleNamespace(channel=channel, delivery_tag=t, body=b"{}") for t in (1, 2, 3)]
    await bridge._settle(batch, 1024)
    assert channel.acks == [3]
    assert bridge.abandoned == 3
