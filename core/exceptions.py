"""The project's errors; SDK and driver errors are re-raised as these with `from`."""

from __future__ import annotations

__all__ = [
    "BadEventError",
    "BrokerUnavailableError",
    "ConcurrencyError",
    "ConfigurationError",
    "MappingError",
    "ProcessorsError",
    "ShardTypeMissingError",
    "ShardValidationError",
    "StartupError",
    "StoreError",
    "TransientError",
    "WritesLostError",
]


class ProcessorsError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigurationError(ProcessorsError):
    """A setting or configuration file is wrong; raised at start-up."""


class StartupError(ProcessorsError):
    """A dependency did not become ready, or shard types could not be ensured."""


class BrokerUnavailableError(StartupError):
    """The Kafka-compatible broker did not answer."""


class BadEventError(ProcessorsError):
    """An event can never be processed as it is (poison): it is dead-lettered."""


class MappingError(BadEventError):
    """A record could not be mapped onto its shard type."""


class ShardValidationError(BadEventError):
    """A shard does not satisfy its shard type's schema."""


class TransientError(ProcessorsError):
    """A failure worth retrying (a dependency was briefly unavailable)."""


class StoreError(TransientError):
    """The shard store failed to answer."""


class WritesLostError(StoreError):
    """Writes the store held to commit together were not committed (`held_writes`)."""


class ConcurrencyError(ProcessorsError):
    """An optimistic-concurrency check failed: the shard changed since it was read."""


class ShardTypeMissingError(ProcessorsError):
    """A shard was written for a type the store does not know yet."""
