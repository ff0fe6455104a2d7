"""All settings of the service, read once from the environment (CONTRACT §5)."""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["LIGHT_BATCH_SIZE", "ConsumerType", "Settings"]


#: `AGENT_BATCH_SIZE` of a light worker when it is not set
LIGHT_BATCH_SIZE = 1000


class ConsumerType(StrEnum):
    """Which agents a worker runs."""

    LIGHT = "light"
    HEAVY = "heavy"
    ALL = "all"


class Settings(BaseSettings):
    """Every setting of the processors; names are the environment variables."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore")

    # --- fixed by the contract ---------------------------------------------------
    BROKER_URL: str | None = Field(
        default=None,
        description="Kafka bootstrap servers, kafka://host:port[;host:port]. Unset: the "
        "embedded broker started by `integration-processors broker` or `dev`.",
    )
    RABBITMQ_URL: str = "amqp://guest:guest@127.0.0.1:5672/"
    CONSUMER_TYPE: ConsumerType = ConsumerType.ALL
    PORT: int = 6066
    STORE_URL: str | None = None
    DATA_DIR: Path = Path("./data")
    BLOB_DIR: Path | None = None
    JWT_SECRET: SecretStr = SecretStr("development-only-secret-change-me-in-deployment")
    TENANT_CONFIG: Path | None = None
    AZURE_BLOB_CONNECTION_STRING: SecretStr | None = None
    AZURE_COMPUTER_VISION_ENDPOINT: str | None = None
    AZURE_COMPUTER_VISION_KEY: SecretStr | None = None
    AZURE_SPEECH_ENDPOINT: str | None = None
    AZURE_SPEECH_KEY: SecretStr | None = None
    COSMOS_KEY: SecretStr | None = Field(
        default=None, description="the Cosmos DB account key, when STORE_URL is cosmos://"
    )
    COSMOS_VERIFY_TLS: bool = Field(
        default=True,
        description="verify the Cosmos DB endpoint's certificate; false only for an emulator",
    )
    # At least 1 and above 0: the SDK reads 0 as "use its default" (9 retries, 30 s).
    COSMOS_THROTTLE_RETRIES: int = Field(
        default=9, ge=1, description="429s retried per Cosmos DB request (after retry-after)"
    )
    COSMOS_THROTTLE_MAX_WAIT: float = Field(
        default=30.0, gt=0, description="seconds of retry-after waits per request, at most"
    )

    # --- the project's own ---------------------------------------------------------
    APP_ID: str = Field(
        default="integration-processors",
        description="Faust app id: consumer group and prefix of Faust's own topics.",
    )
    AGENTS: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="agents a worker runs within its CONSUMER_TYPE, comma-separated names; "
        "or exclusions, each name prefixed by '-'. Empty: every agent of the role. A worker "
        "with a selection joins its own consumer group (APP_ID.<the agents, sorted>).",
    )
    TOPIC_PARTITIONS: int = Field(default=4, ge=1)
    TOPIC_REPLICATION: int = Field(default=1, ge=1)
    BROKER_SESSION_TIMEOUT: float = Field(default=6.0, gt=0)
    BROKER_HEARTBEAT_INTERVAL: float = Field(default=1.0, gt=0)
    STARTUP_RETRIES: int = Field(default=30, ge=1)
    STARTUP_RETRY_DELAY: float = Field(default=2.0, ge=0)
    SHARD_TYPE_RETRIES: int = Field(default=3, ge=1)
    SHARD_TYPE_RETRY_DELAY: float = Field(default=1.0, ge=0)
    AGENT_BATCH_SIZE: int = Field(
        default=500,
        ge=1,
        description="events an agent takes at once (and the chunks topics are delivered "
        f"in); unset, {LIGHT_BATCH_SIZE} in a light worker",
    )
    AGENT_BATCH_WINDOW: float = Field(default=0.2, gt=0)
    BATCH_DELIVERY: bool = Field(
        default=True,
        description="deliver the agents' topics to them one chunk of a partition's fetch at "
        "a time (streams.batch_delivery); false: record by record, as Faust does",
    )
    GC_THRESHOLD: int = Field(
        default=50_000,
        ge=0,
        description="allocations between the garbage collector's youngest-generation runs "
        "in a worker or bridge (Python's default 700; 0 keeps it); see docs/decisions.md",
    )
    SQLITE_CACHE_MB: int = Field(
        default=32,
        ge=0,
        description="MB of pages the embedded store's batch writer keeps (SQLite's "
        "default 2 MB; 0 keeps it); mail and chat backfills write index rows at random "
        "places, see docs/decisions.md",
    )
    CONSUMER_FETCH_MAX_WAIT: float = Field(
        default=0.1,
        gt=0,
        le=1.5,
        description="seconds a fetch may wait for records (Tansu always waits all of it)",
    )
    AGENT_RETRIES: int = Field(default=5, ge=1)
    AGENT_RETRY_MAX_DELAY: float = Field(default=30.0, gt=0)
    BRIDGE_PREFETCH: int = Field(default=2000, ge=1)
    BRIDGE_BATCH_SIZE: int = Field(default=500, ge=1)
    BRIDGE_BATCH_WINDOW: float = Field(default=0.05, gt=0)
    BRIDGE_MAX_MESSAGE_BYTES: int = Field(default=16 * 1024 * 1024, ge=1024)
    BRIDGE_STOP_TIMEOUT: float = Field(default=10.0, gt=0)
    BRIDGE_QUEUE_PREFIX: str = "integration-processors"
    BRIDGE_METRICS_PORT: int | None = None
    HEAVY_CONCURRENCY: int = Field(
        default=2, ge=1, description="files a heavy worker extracts or transcribes at once"
    )
    DOCUMENT_MAX_BYTES: int = Field(default=100 * 1024 * 1024, ge=1)
    DOCUMENT_MAX_CHARS: int = Field(default=2_000_000, ge=1000)
    DOCUMENT_TIMEOUT: float = Field(default=120.0, gt=0)
    MEETING_MAX_BYTES: int = Field(default=2 * 1024 * 1024 * 1024, ge=1)
    MEETING_TIMEOUT: float = Field(default=3600.0, gt=0)
    BLOB_RETRIES: int = Field(default=4, ge=1)
    TABLE_STORE: str = Field(
        default="rocksdb://",
        description="Faust table store: rocksdb:// (rocksdict, under DATA_DIR) or memory://",
    )
    TABLE_STANDBY_REPLICAS: int = Field(default=1, ge=0)
    WEB_CANONICAL_URL: str | None = Field(
        default=None,
        description="how other workers reach this one's web views (table-routed API "
        "calls); default http://<hostname>:<PORT>",
    )
    ML_WRITEBACK_DELAY: float = Field(
        default=5.0, gt=0, description="longest wait before changed ML fields are written back"
    )
    ML_WRITEBACK_TICK: float = Field(default=0.5, gt=0)
    ML_RECALC_CRON: str = Field(
        default="0 2 * * *",
        description="when active opportunities are recalculated (cron; a sixth field is seconds)",
    )
    ML_RECALC_TIME_ZONE: str = "UTC"
    JWT_ALGORITHM: str = "HS256"
    JWT_LEEWAY: float = Field(default=30.0, ge=0)
    JWT_SECRET_ENABLED: bool = Field(
        default=True,
        description="accept HS256 tokens signed with JWT_SECRET; false: only JWKS tokens",
    )
    JWT_JWKS_URL: str | None = Field(
        default=None,
        description="the identity provider's JWKS: RS256/ES256 tokens are verified with its keys",
    )
    JWT_ISSUER: str | None = Field(default=None, description="required `iss` of JWKS tokens")
    JWT_AUDIENCE: str | None = Field(default=None, description="required `aud` of JWKS tokens")
    JWT_JWKS_TTL: float = Field(default=300.0, gt=0, description="seconds keys are cached")
    JWT_JWKS_MIN_REFRESH: float = Field(
        default=30.0, ge=0, description="fewest seconds between two fetches for an unknown kid"
    )
    TOKEN_TTL: int = Field(default=3600, ge=1, description="seconds a `token` lasts")
    LOG_LEVEL: str = "INFO"
    STALL_TIMEOUT: float = Field(
        default=60.0,
        gt=0,
        description="seconds an assigned partition may have lag and no progress before the "
        "watchdog reports and repairs it",
    )
    RECONNECT_MAX_DELAY: float = Field(
        default=30.0, gt=0, description="longest wait between reconnection attempts"
    )

    @model_validator(mode="after")
    def _light_batches(self) -> Settings:
        """A light worker's batches, unless set: its store writes one transaction a batch,
        and a larger one costs less a shard (chat 102 → 83 µs a message in `upsert_many`
        alone); heavy agents keep theirs, as they acknowledge a batch of files only when
        every file is done."""
        if "AGENT_BATCH_SIZE" not in self.model_fields_set and (
            self.CONSUMER_TYPE is ConsumerType.LIGHT
        ):
            self.AGENT_BATCH_SIZE = LIGHT_BATCH_SIZE
        return self

    @field_validator("AGENTS", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value

    @cached_property
    def blob_dir(self) -> Path:
        """The local blob folder (CONTRACT §5 `BLOB_DIR`)."""
        return self.BLOB_DIR or self.DATA_DIR / "blobs"

    @cached_property
    def broker_url_file(self) -> Path:
        """Where the embedded broker records its URL for workers and the bridge."""
        return self.DATA_DIR / "broker.url"
