"""The Faust app: configuration from settings, start-up order, agents of the role."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import faust
from faust.types import TransportT

from processors.bootstrap import Dependencies, resolve_broker_url
from processors.settings import Settings
from streams.channels import Topics
from streams.end_offsets import TrueEndTransport

if TYPE_CHECKING:
    from tables.ml_fields import MlFields

__all__ = ["ProcessorsApp", "create_app"]

logger = logging.getLogger(__name__)


class ProcessorsApp(faust.App):
    """A Faust app that starts its dependencies before any agent runs."""

    settings: Settings
    deps: Dependencies
    contract_topics: Topics
    agent_names: list[str]
    ml_fields: MlFields

    def _new_transport(self) -> TransportT:
        """aiokafka, with recovery end offsets checked by a fetch (`streams.end_offsets`)."""
        return TrueEndTransport(self.conf.broker_consumer, self)

    async def on_first_start(self) -> None:
        """Start-up, as in the plan: dependencies → shard types, then web and agents."""
        await super().on_first_start()
        await self.deps.start()

    async def on_shutdown(self) -> None:
        """Close adapters after agents, consumer and producer have stopped."""
        await super().on_shutdown()
        await self.deps.stop()


def create_app(settings: Settings, **overrides: Any) -> ProcessorsApp:
    """The app for these settings, with the agents of `CONSUMER_TYPE` and all web views."""
    from agents import register_agents  # agents import the app type
    from processors.commands import register_commands
    from web.views import register_views

    broker_url = resolve_broker_url(settings)
    settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
    conf: dict[str, Any] = {
        "broker": broker_url,
        "store": settings.TABLE_STORE,
        "table_standby_replicas": settings.TABLE_STANDBY_REPLICAS,
        "datadir": str(settings.DATA_DIR / "faust"),
        "web_port": settings.PORT,
        "web_enabled": True,
        "topic_partitions": settings.TOPIC_PARTITIONS,
        "topic_replication_factor": settings.TOPIC_REPLICATION,
        "broker_session_timeout": settings.BROKER_SESSION_TIMEOUT,
        "broker_heartbeat_interval": settings.BROKER_HEARTBEAT_INTERVAL,
        "consumer_auto_offset_reset": "earliest",
        "producer_acks": -1,
        "key_serializer": "raw",
        "value_serializer": "raw",
        "autodiscover": False,
        "logging_config": None,
    }
    if settings.WEB_CANONICAL_URL:
        conf["canonical_url"] = settings.WEB_CANONICAL_URL
    conf.update(overrides)
    app = ProcessorsApp(settings.APP_ID, **conf)
    app.settings = settings
    app.contract_topics = Topics.declare(app, settings.TOPIC_PARTITIONS)
    app.deps = Dependencies.build(settings, broker_url, app.contract_topics)
    app.agent_names = register_agents(app, settings.CONSUMER_TYPE)
    register_views(app)
    register_commands(app)
    return app
