"""`shards-upgrade`: bring stored shards to the current shapes without waiting for a sync."""

from __future__ import annotations

import faust
from faust.cli import AppCommand, option

from processors.bootstrap import Adapters
from shards.upgrades import upgrade_store

__all__ = ["register_upgrade_command"]


def register_upgrade_command(app: faust.App, adapters: Adapters) -> None:
    """Add `shards-upgrade` to `app`'s command line."""

    @app.command(
        option("--tenant", default=None, help="one tenant (default: every tenant)"),
        option("--dry-run", is_flag=True, default=False, help="count only, write nothing"),
    )
    async def shards_upgrade(self: AppCommand, tenant: str | None, dry_run: bool) -> None:
        """Rewrite communication shards still in an older shape (participants as bare
        addresses or without roles, thread ids not namespaced by integration)."""
        store = adapters.store
        await store.start()
        try:
            count = await upgrade_store(store, tenant_id=tenant, dry_run=dry_run)
        finally:
            await store.stop()
        verb = "to upgrade" if dry_run else "upgraded"
        self.say(f"{count.read} communication shards: {count.upgraded} {verb}")
