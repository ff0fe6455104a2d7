"""Progress bars for long commands: on a terminal only, so logs and pipes stay clean."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import IO, TypeVar

from tqdm import tqdm

__all__ = ["ProgressBar", "on_terminal", "progress_bar", "tracked"]

T = TypeVar("T")
ProgressBar = tqdm


def on_terminal(stream: IO[str] | None = None) -> bool:
    """Whether the bar's stream (stderr) and stdout both are terminals."""
    bar_stream = stream if stream is not None else sys.stderr
    return bool(bar_stream.isatty() and sys.stdout.isatty())


def progress_bar(
    description: str, *, total: int | None = None, unit: str = "it", stream: IO[str] | None = None
) -> tqdm:
    """A bar on stderr, disabled (silent, still counting) when not on a terminal."""
    return tqdm(
        total=total,
        desc=description,
        unit=unit,
        file=stream if stream is not None else sys.stderr,
        disable=not on_terminal(stream),
        # One bar at a time: its height bound only matters on a terminal reporting no rows
        # (a fresh `docker exec -t`), where tqdm would otherwise hide the bar.
        nrows=100,
        leave=False,
    )


def tracked(
    items: Iterable[T], description: str, *, total: int | None = None, unit: str = "it"
) -> Iterator[T]:
    """`items`, advancing a bar as they are taken."""
    with progress_bar(description, total=total, unit=unit) as bar:
        for item in items:
            yield item
            bar.update(1)
