"""The `integration-processors` console script: Faust's CLI plus the project's commands."""

from __future__ import annotations

import sys

from core.settings import Settings
from processors.app import create_app

__all__ = ["main"]


def main() -> None:
    """Read settings once, build the app, hand the command line to Faust."""
    settings = Settings()
    if not {"-l", "--loglevel"} & set(sys.argv[1:]):
        sys.argv[1:1] = ["-l", _faust_level(settings.LOG_LEVEL)]
    create_app(settings).main()


def _faust_level(level: str) -> str:
    # Faust's -l takes "warn", not "warning".
    return {"warning": "warn"}.get(level.lower(), level.lower())


if __name__ == "__main__":
    main()
