"""Talking to the broker about topics: readiness and idempotent topic creation."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from core.exceptions import BrokerUnavailableError

__all__ = ["BrokerAdmin", "bootstrap_servers"]

logger = logging.getLogger(__name__)


def bootstrap_servers(broker_url: str) -> str:
    """`kafka://h1:p1;h2:p2` (Faust's form) to `h1:p1,h2:p2` (aiokafka's)."""
    hosts = []
    for part in broker_url.replace(",", ";").split(";"):
        host = part.strip()
        if "://" in host:
            host = host.split("://", 1)[1]
        if host:
            hosts.append(host.rstrip("/"))
    return ",".join(hosts)


class BrokerAdmin:
    """An admin connection to the broker; `start()`/`stop()` or `async with`."""

    def __init__(self, broker_url: str, *, request_timeout_ms: int = 5000) -> None:
        self._bootstrap = bootstrap_servers(broker_url)
        self._timeout_ms = request_timeout_ms
        self._client: AIOKafkaAdminClient | None = None

    async def __aenter__(self) -> BrokerAdmin:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Connect; `BrokerUnavailableError` when the broker does not answer."""
        if self._client is not None:
            return
        client = AIOKafkaAdminClient(
            bootstrap_servers=self._bootstrap, request_timeout_ms=self._timeout_ms
        )
        try:
            await client.start()
        except (KafkaError, OSError) as e:
            await client.close()
            message = f"broker {self._bootstrap} does not answer: {e!r}"
            raise BrokerUnavailableError(message) from e
        self._client = client

    async def stop(self) -> None:
        """Disconnect; safe to call twice."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def ping(self) -> None:
        """Return when the broker answers a metadata request."""
        try:
            await self._admin().list_topics()
        except (KafkaError, OSError) as e:
            message = f"broker {self._bootstrap} does not answer: {e!r}"
            raise BrokerUnavailableError(message) from e

    async def ensure_topics(
        self,
        names: Iterable[str],
        *,
        partitions: int,
        replication: int = 1,
        configs: dict[str, str] | None = None,
    ) -> list[str]:
        """Create the topics that do not exist yet (with topic `configs`); return those created."""
        admin = self._admin()
        try:
            existing = set(await admin.list_topics())
        except (KafkaError, OSError) as e:
            message = f"broker {self._bootstrap} does not answer: {e!r}"
            raise BrokerUnavailableError(message) from e
        missing = [n for n in names if n not in existing]
        if not missing:
            return []
        topics = [
            NewTopic(
                n,
                num_partitions=partitions,
                replication_factor=replication,
                topic_configs=configs or {},
            )
            for n in missing
        ]
        try:
            response = await admin.create_topics(topics)
        except (KafkaError, OSError) as e:
            message = f"could not create topics {missing}: {e!r}"
            raise BrokerUnavailableError(message) from e
        failed = [
            (name, msg)
            for name, code, msg in response.topic_errors
            if code not in (0, TopicAlreadyExistsError.errno)
        ]
        if failed:
            message = f"could not create topics: {failed}"
            raise BrokerUnavailableError(message)
        logger.info("created topics %s with %d partitions", missing, partitions)
        return missing

    def _admin(self) -> AIOKafkaAdminClient:
        if self._client is None:
            message = "the broker admin is not started"
            raise BrokerUnavailableError(message)
        return self._client
