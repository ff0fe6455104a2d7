"""The container healthcheck: GET /health on this process's port, exit 0 only on a 200."""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request

from core.settings import Settings

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Probe the worker's web views on `PORT`, or with `--bridge` its metrics server on
    `BRIDGE_METRICS_PORT` (which answers any path while the bridge runs)."""
    parser = argparse.ArgumentParser(prog="python -m processors.probe", description=__doc__)
    parser.add_argument("--bridge", action="store_true", help="probe the bridge")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds")
    args = parser.parse_args(argv)
    settings = Settings()
    port = settings.BRIDGE_METRICS_PORT if args.bridge else settings.PORT
    if port is None:
        sys.stderr.write("the bridge serves no health endpoint: set BRIDGE_METRICS_PORT\n")
        return 2
    url = f"http://127.0.0.1:{port}/health"
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as answer:
            healthy = answer.status == 200
    except (urllib.error.URLError, OSError) as e:
        sys.stderr.write(f"{url}: {e}\n")
        return 1
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
