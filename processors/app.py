"""The Faust app: configuration from settings, start-up order, agents of the role."""

from __future__ import annotations

import logging
from typing import Any

import faust
from faust.types import ProducerT, TransportT

from agents import AgentDeps, register_agents
from core.settings import Settings
from processors.bootstrap import Adapters, build_adapters
from processors.commands import register_commands
from processors.roles import consumer_group, select_agents
from streams.batch_delivery import BatchingTransport
from streams.channels import StreamWriter, Topics
from streams.watchdog import ConsumerWatchdog
from tables.ml_fields import StoreMlFields, TableDeps
from tables.ml_fields import register as register_ml_fields
from web.deps import MlFieldsSource, WebDeps
from web.views import register_views

__all__ = ["ProcessorsApp", "create_app"]

logger = logging.getLogger(__name__)

#: batches' worth of table changelog records Faust's producer buffers before a flush
PRODUCER_BUFFER_BATCHES = 4


class ProcessorsApp(faust.App):
    """A Faust app that starts its adapters before any agent runs.

    Everything the app holds beyond Faust's own is set here, at construction: the
    settings, the adapters, the contract's topics, the writer agents emit through and
    the consumer's progress watchdog (a timer of the worker).
    """

    def __init__(self, settings: Settings, adapters: Adapters, **conf: Any) -> None:
        self.selected_agents = select_agents(settings)
        super().__init__(consumer_group(settings, self.selected_agents), **conf)
        self.settings = settings
        self.adapters = adapters
        #: read by `streams.end_offsets.ShortPollThread` when it makes the consumer
        self.fetch_max_wait_ms = round(settings.CONSUMER_FETCH_MAX_WAIT * 1000)
        self.contract_topics = Topics.declare(self, settings.TOPIC_PARTITIONS)
        #: read by `streams.batch_delivery.BatchingConsumer`: topics whose agents take lists
        self.batched_topics = (
            self.contract_topics.batched_names() if settings.BATCH_DELIVERY else frozenset()
        )
        self.batch_delivery_size = settings.AGENT_BATCH_SIZE
        self.writer = StreamWriter(self.contract_topics)
        self.agent_names: list[str] = []
        self.watchdog = ConsumerWatchdog(self, settings.STALL_TIMEOUT)
        self.timer(self.watchdog.interval, name="consumer_watchdog")(self.watchdog.check)

    def _new_producer(self) -> ProducerT:
        """Faust's producer, its buffer of table changelog records sized for a batch: at
        Faust's 100 a batch of the ML-field table's writes (one per opportunity, up to
        `AGENT_BATCH_SIZE`) stopped the agent to flush every hundred and logged "producer
        buffer full" each time (98 warnings in a run of `benchmarks/ml_fields.py`, 2 with
        this; its rates the same within this machine's drift). Faust's commit still
        waits for the buffer to drain."""
        producer = super()._new_producer()
        producer.buffer.max_messages = PRODUCER_BUFFER_BATCHES * self.settings.AGENT_BATCH_SIZE
        return producer

    def _new_transport(self) -> TransportT:
        """aiokafka, with recovery end offsets checked by a fetch (`streams.end_offsets`)
        and the agents' topics delivered in chunks (`streams.batch_delivery`)."""
        return BatchingTransport(self.conf.broker_consumer, self)

    async def on_first_start(self) -> None:
        """Start-up, as in the plan: dependencies → shard types, then web and agents."""
        await super().on_first_start()
        await self.adapters.start()

    async def on_shutdown(self) -> None:
        """Close adapters after agents, consumer and producer have stopped."""
        await super().on_shutdown()
        await self.adapters.stop()


class ProcessorsWorker(faust.Worker):
    """Faust's worker without its terminal spinner.

    At a level of WARN or above Faust sets the root logger to DEBUG for the spinner's
    handler, so every debug record of aiokafka and Faust was built and dropped: 5-6% of
    a busy worker's main thread (py-spy, `docs/profiles.md`).
    """

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None
        super().on_setup_root_logger(logger, level)


def faust_conf(settings: Settings, broker_url: str) -> dict[str, Any]:
    """Faust's configuration from settings."""
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
        "Worker": ProcessorsWorker,
    }
    if settings.WEB_CANONICAL_URL:
        conf["canonical_url"] = settings.WEB_CANONICAL_URL
    return conf


def create_app(settings: Settings, **overrides: Any) -> ProcessorsApp:
    """The app for these settings: the agents and tables of `CONSUMER_TYPE` that `AGENTS`
    selects, every web view and the project's commands, each handed what it needs."""
    adapters = build_adapters(settings)
    settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
    app = ProcessorsApp(
        settings, adapters, **{**faust_conf(settings, adapters.broker_url), **overrides}
    )
    a = adapters
    selected = app.selected_agents
    table_deps = TableDeps(settings, app.contract_topics, app.writer, a.store, a.tenants)
    routing, table, table_agents = register_ml_fields(app, table_deps, selected)
    ml_fields: MlFieldsSource = table if table is not None else StoreMlFields(a.store, a.tenants)
    agent_deps = AgentDeps(
        settings, app.contract_topics, app.writer, a.store, a.tenants, a.mappings, a.blobs,
        a.ocr, a.transcriber,
    )  # fmt: skip
    app.agent_names = register_agents(app, selected, agent_deps, after_linking=routing.route)
    app.agent_names += table_agents
    web_deps = WebDeps(
        settings, a.store, app.writer, a.admin, a.blobs, ml_fields, tuple(app.agent_names),
        consumer_stalls=app.watchdog.stalled,
    )  # fmt: skip
    register_views(app, web_deps)
    register_commands(app, settings, adapters, app.writer)
    return app
