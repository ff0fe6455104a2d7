"""Each tenant's CRM mappings: the shipped ones with the overrides its configuration gives."""

from __future__ import annotations

from core.tenants import TenantDirectory
from mappings.crm import ProviderMapping
from mappings.overrides import Overrides, effective_mappings, parse_overrides

__all__ = ["TenantMappings"]


class TenantMappings:
    """The CRM mappings of every tenant's integrations; the overrides validated once."""

    def __init__(
        self, shipped: dict[str, ProviderMapping], overrides: dict[str, Overrides] | None = None
    ) -> None:
        self.shipped = shipped
        self._overrides = dict(overrides or {})
        self._effective: dict[tuple[str, str], dict[str, ProviderMapping]] = {}

    @classmethod
    def of_directory(
        cls, tenants: TenantDirectory, shipped: dict[str, ProviderMapping]
    ) -> TenantMappings:
        """Validate every tenant's `mappings`; a bad one raises `ConfigurationError` naming
        the file, the tenant and the problem (start-up stops on it)."""
        overrides = {
            tenant_id: parse_overrides(
                config.mappings, f"{tenants.source}: tenants.{tenant_id}.mappings"
            )
            for tenant_id, config in tenants.configured().items()
            if config.mappings
        }
        return cls(shipped, overrides)

    def of(self, tenant_id: str, integration_id: str) -> dict[str, ProviderMapping]:
        """The mappings of one tenant's integration: shipped, with its overrides."""
        overrides = self._overrides.get(tenant_id)
        if overrides is None:
            return self.shipped
        key = (tenant_id, integration_id)
        if key not in self._effective:
            self._effective[key] = effective_mappings(self.shipped, overrides, integration_id)
        return self._effective[key]
