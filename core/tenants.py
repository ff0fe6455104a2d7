"""Tenant configuration (CONTRACT §7): internal domains, exclusions, time zone, linking."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.addresses import FREE_MAIL_DOMAINS, domain_of, is_no_reply
from core.exceptions import ConfigurationError
from core.validation import describe_validation_error

__all__ = [
    "FREE_MAIL_DOMAINS",
    "LinkingThresholds",
    "TenantConfig",
    "TenantDirectory",
    "domain_of",
    "is_no_reply",
]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class LinkingThresholds(_Config):
    """Confidence at or above `autoThreshold` links at once; from `suggestThreshold` it asks."""

    auto_threshold: float = Field(default=0.85, ge=0, le=1, alias="autoThreshold")
    suggest_threshold: float = Field(default=0.5, ge=0, le=1, alias="suggestThreshold")

    @model_validator(mode="after")
    def _ordered(self) -> LinkingThresholds:
        if self.suggest_threshold > self.auto_threshold:
            message = "suggestThreshold must not be above autoThreshold"
            raise ValueError(message)
        return self


class TenantConfig(_Config):
    """One tenant's configuration; every key optional."""

    internal_domains: frozenset[str] = Field(default=frozenset(), alias="internalDomains")
    excluded_addresses: frozenset[str] = Field(default=frozenset(), alias="excludedAddresses")
    excluded_domains: frozenset[str] = Field(default=frozenset(), alias="excludedDomains")
    #: domains of the tenant's partners and resellers, whatever their CRM account says
    partner_domains: frozenset[str] = Field(default=frozenset(), alias="partnerDomains")
    time_zone: str = Field(default="UTC", alias="timeZone")
    linking: LinkingThresholds = Field(default_factory=LinkingThresholds)
    mappings: dict[str, Any] = Field(default_factory=dict)

    @field_validator(
        "internal_domains",
        "excluded_addresses",
        "excluded_domains",
        "partner_domains",
        mode="before",
    )
    @classmethod
    def _lower(cls, values: Any) -> Any:
        if isinstance(values, list | tuple | set | frozenset):
            # a blank entry names no domain (it made every address without one internal)
            return frozenset(t for v in values if (t := str(v).strip().lower()))
        return values

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as e:
            message = f"unknown time zone {name!r}"
            raise ValueError(message) from e
        return name

    @cached_property
    def zone(self) -> ZoneInfo:
        """The tenant's time zone, where "a day" is counted."""
        return ZoneInfo(self.time_zone)

    def is_internal(self, address: str) -> bool:
        """True when the address is one of the tenant's own (its domain or a subdomain)."""
        return _under(domain_of(address), self.internal_domains)

    def is_excluded(self, address: str) -> bool:
        """True for addresses the tenant never wants linked or counted."""
        address = address.strip().lower()
        domain = domain_of(address)
        return address in self.excluded_addresses or _under(domain, self.excluded_domains)

    def is_partner_domain(self, domain: str) -> bool:
        """True when the domain (or a parent of it) is one of the tenant's partners'."""
        return _under(domain.strip().lower(), self.partner_domains)

    def is_free_mail(self, address: str) -> bool:
        """True for well-known free-mail domains."""
        return domain_of(address) in FREE_MAIL_DOMAINS


def _under(domain: str, domains: Collection[str]) -> bool:
    """True when the domain or a parent of it (at a dot) is one of `domains`: a look-up
    per level, where comparing with each of the tenant's domains built a string each."""
    if not domains:
        return False
    while domain:
        if domain in domains:
            return True
        domain = domain.partition(".")[2]
    return False


class TenantDirectory:
    """All tenants' configurations; a tenant not in the file gets the defaults."""

    def __init__(self, tenants: Mapping[str, TenantConfig] | None = None, source: str = "") -> None:
        self._tenants = dict(tenants or {})
        self._default = TenantConfig()
        #: where the configuration came from, for messages about its entries
        self.source = source or "tenant configuration"

    def of(self, tenant_id: str) -> TenantConfig:
        """The configuration of one tenant."""
        return self._tenants.get(tenant_id, self._default)

    def configured(self) -> dict[str, TenantConfig]:
        """The tenants the file names, by id."""
        return dict(self._tenants)

    @classmethod
    def load(cls, path: Path | None) -> TenantDirectory:
        """Read YAML or JSON at `path` (None: no file, defaults for everyone).

        A bad file is refused with a message that names the file, the entry and the problem.
        """
        if path is None:
            return cls()
        try:
            text = path.read_text(encoding="utf-8")
            raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as e:
            message = f"tenant configuration {path}: {e}"
            raise ConfigurationError(message) from e
        raw = raw or {}
        if not isinstance(raw, dict) or not isinstance(raw.get("tenants", {}), dict):
            message = f"tenant configuration {path}: expected a mapping with a 'tenants' mapping"
            raise ConfigurationError(message)
        tenants = {}
        for tenant_id, entry in (raw.get("tenants") or {}).items():
            try:
                tenants[str(tenant_id)] = TenantConfig.model_validate(entry or {})
            except ValidationError as e:
                problems = describe_validation_error(e, root="(entry)")
                message = f"tenant configuration {path}: tenants.{tenant_id}: {problems}"
                raise ConfigurationError(message) from e
        return cls(tenants, source=str(path))
