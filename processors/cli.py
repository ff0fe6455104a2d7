"""The `integration-processors` console script: Faust's CLI plus the project's commands."""

from __future__ import annotations

import gc
import sys

from core.settings import Settings
from processors.app import create_app

__all__ = ["main", "tune_gc"]


def main() -> None:
    """Read settings once, build the app, hand the command line to Faust."""
    settings = Settings()
    tune_gc(settings.GC_THRESHOLD)
    if not {"-l", "--loglevel"} & set(sys.argv[1:]):
        sys.argv[1:1] = ["-l", _faust_level(settings.LOG_LEVEL)]
    create_app(settings).main()


def tune_gc(threshold: int) -> None:
    """The collector's youngest generation every `threshold` allocations (0: Python's
    default), the older ones every 20 and 10 of the one below. At Python's 700 a CRM
    backfill ran ~190 collections a second, 16% of the worker's time (its older-generation
    runs walk a heap of ~170 MB); at 50,000, a handful."""
    if threshold:
        gc.set_threshold(threshold, 20, 10)


def _faust_level(level: str) -> str:
    # Faust's -l takes "warn", not "warning".
    return {"warning": "warn"}.get(level.lower(), level.lower())


if __name__ == "__main__":
    main()
