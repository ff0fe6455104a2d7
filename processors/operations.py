"""Operators' commands: `dlq list|replay` (dead letters) and `status` (topics and lag)."""

from __future__ import annotations

from collections.abc import Sequence

import click
import faust
from faust.cli import AppCommand, argument, option

from core.settings import Settings
from processors.bootstrap import Adapters
from processors.progress import progress_bar
from streams.dead_letter_records import DeadLetterSelection, parse_since
from streams.dead_letter_replay import replay_dead_letters, summarise_dead_letters
from streams.lag import BrokerStatus, broker_status

__all__ = ["format_status", "register_operations_commands"]

_ERROR_WIDTH = 160


def register_operations_commands(app: faust.App, settings: Settings, adapters: Adapters) -> None:
    """Add `dlq` and `status` to `app`'s command line."""

    @app.command(
        argument("action", type=click.Choice(["list", "replay"])),
        option(
            "--stage",
            multiple=True,
            help="only this stage (repeatable): bridge, validate, map, store",
        ),
        option("--error-type", multiple=True, help="only this error type (repeatable)"),
        option("--tenant", multiple=True, help="only this tenant (repeatable)"),
        option("--since", default=None, help="failed at or after: RFC 3339, or an age: 2h, 7d"),
        option("--samples", type=int, default=5, help="list: how many dead letters to show"),
        option("--dry-run", is_flag=True, default=False, help="replay: count only, send nothing"),
    )
    async def dlq(
        self: AppCommand,
        action: str,
        stage: Sequence[str],
        error_type: Sequence[str],
        tenant: Sequence[str],
        since: str | None,
        samples: int,
        dry_run: bool,
    ) -> None:
        """Dead letters: `list` counts and samples them, `replay` sends their events back."""
        try:
            selection = DeadLetterSelection.of(stage, error_type, tenant, parse_since(since))
        except ValueError as e:
            raise click.BadParameter(str(e)) from e
        url = adapters.broker_url
        if action == "list":
            with progress_bar("reading dead letters", unit="letter") as bar:
                summary = await summarise_dead_letters(
                    url, selection, samples=samples, progress=bar.update
                )
            self.say(
                f"{summary.selected} of {summary.scanned} dead letters match "
                f"({selection.describe()}); {summary.replayed} of them already replayed"
            )
            if summary.by_reason:
                self.say(f"{'count':>7}  {'stage':<10} {'error type':<28} source topic")
                for (stage_, type_, source), count in summary.by_reason.most_common():
                    self.say(f"{count:>7}  {stage_:<10} {type_:<28} {source}")
                tenants = ", ".join(f"{t} {n}" for t, n in summary.by_tenant.most_common(10))
                self.say(f"tenants: {tenants}")
            for letter in summary.samples:
                key = letter.key.decode("utf-8", "replace") if letter.key else "-"
                self.say(
                    f"- {letter.position} {letter.headers.get('failedAt', '?')} "
                    f"{letter.stage}/{letter.error_type} key={key}: {letter.error[:_ERROR_WIDTH]}"
                )
            return
        with progress_bar("replaying dead letters", unit="letter") as bar:

            def set_total(total: int) -> None:
                bar.total = total
                bar.refresh()

            report = await replay_dead_letters(
                url,
                selection,
                dry_run=dry_run,
                replication=settings.TOPIC_REPLICATION,
                progress=bar.update,
                total=set_total,
            )
        verb = "would send" if dry_run else "sent"
        topics = ", ".join(f"{t} {n}" for t, n in sorted(report.by_topic.items())) or "-"
        self.say(
            f"{report.selected} of {report.scanned} dead letters match ({selection.describe()}): "
            f"{verb} {report.sent} back ({topics}); {report.already_replayed} already replayed; "
            f"{report.not_replayable} without a source topic"
        )

    @app.command(
        option("--group", multiple=True, help="only this group (repeatable); default: all"),
        option("--internal", is_flag=True, default=False, help="also topics named __..."),
    )
    async def status(self: AppCommand, group: Sequence[str], internal: bool) -> None:
        """Each topic's partitions and end offsets, and each consumer group's lag."""
        found = await broker_status(
            adapters.broker_url, groups=list(group) or None, internal=internal
        )
        self.say(format_status(found))


def format_status(status: BrokerStatus) -> str:
    """The text `status` prints."""
    lines = ["topics (partition:end offset)"]
    for topic, ends in sorted(status.ends.items()):
        parts = " ".join(f"{p}:{end}" for p, end in sorted(ends.items()))
        lines.append(f"  {topic}  [{len(ends)} partitions, {sum(ends.values())} records]  {parts}")
    lines.append("consumer groups (topic partition: committed/end lag)")
    if not status.groups:
        lines.append("  none")
    for group, lags in sorted(status.groups.items()):
        lines.append(f"  {group}  total lag {status.group_lag(group)}")
        for topic in sorted({lag.topic for lag in lags}):
            parts = " ".join(
                f"{lag.partition}:{lag.committed}/{lag.end} lag {lag.lag}"
                for lag in lags
                if lag.topic == topic
            )
            lines.append(f"    {topic}  lag {status.topic_lag(group, topic)}  {parts}")
    return "\n".join(lines)
