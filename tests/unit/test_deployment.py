"""The compose file validates and says what the deployment needs; the Dockerfile passes
hadolint and builds a multi-stage, non-root image with a health check."""

from __future__ import annotations

import http.server
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from processors import probe
from processors.embedded_broker import free_port
from processors.roles import ROLE_AGENTS, consumer_group, select_agents
from tests.compose import DEPLOYMENT_ENV, REPO_ROOT, compose_config, run_compose_config

WORKERS = ("integration-processors-light", "email-pool", "integration-processors-heavy")
PROCESSORS = ("bridge", *WORKERS)
SECRETS = ("RABBITMQ_PASSWORD", "STORE_URL", "COSMOS_KEY", "AZURE_BLOB_CONNECTION_STRING",
           "JWT_SECRET")  # fmt: skip
GIB = 1024**3


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return compose_config(DEPLOYMENT_ENV)


@pytest.fixture(scope="module")
def services(config: dict[str, Any]) -> dict[str, Any]:
    return dict(config["services"])


def test_the_compose_file_validates_with_and_without_the_local_profile() -> None:
    for profiles in ((), ("local",)):
        done = run_compose_config(DEPLOYMENT_ENV, "--quiet", profiles=profiles)
        assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("secret", SECRETS)
def test_every_secret_comes_from_the_environment(secret: str) -> None:
    env = {k: v for k, v in DEPLOYMENT_ENV.items() if k != secret}
    done = run_compose_config(env, "--quiet")
    assert done.returncode != 0
    assert f"set {secret}" in done.stderr


def test_an_invalid_service_fails_validation(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    text = (REPO_ROOT / "docker-compose.yml").read_text()
    broken.write_text(text.replace("restart: unless-stopped", "restat: unless-stopped", 1))
    done = run_compose_config(DEPLOYMENT_ENV, "--quiet", compose_file=broken)
    assert done.returncode != 0
    assert ".restat" in done.stderr


def test_the_stack_has_its_services(services: dict[str, Any]) -> None:
    assert {"redpanda", "console", "rabbitmq", *PROCESSORS} <= set(services)
    assert "management" in services["rabbitmq"]["image"]
    console = services["console"]
    assert console["environment"]["KAFKA_BROKERS"] == "redpanda:9092"
    assert [p["target"] for p in console["ports"]] == [8080]
    assert console["depends_on"]["redpanda"]["condition"] == "service_healthy"


def test_the_local_profile_adds_the_azure_emulators() -> None:
    local = compose_config(DEPLOYMENT_ENV, "local")["services"]
    assert {"azurite", "cosmosdb"} <= set(local)
    assert "azure-cosmos-emulator" in local["cosmosdb"]["image"]
    assert "azurite" in local["azurite"]["image"]
    for name in WORKERS:
        for emulator in ("azurite", "cosmosdb"):
            assert local[name]["depends_on"][emulator]["condition"] == "service_healthy"


@pytest.mark.parametrize(
    ("name", "cpus", "memory"),
    [
        ("integration-processors-light", (1, 0.5), (2 * GIB, 1 * GIB)),
        ("email-pool", (1, 0.5), (2 * GIB, 1 * GIB)),
        ("integration-processors-heavy", (4, 2), (8 * GIB, 4 * GIB)),
    ],
)
def test_workers_have_the_plans_limits_and_reservations(
    services: dict[str, Any], name: str, cpus: tuple[float, float], memory: tuple[int, int]
) -> None:
    resources = services[name]["deploy"]["resources"]
    assert (float(resources["limits"]["cpus"]), float(resources["reservations"]["cpus"])) == cpus
    assert (int(resources["limits"]["memory"]), int(resources["reservations"]["memory"])) == memory


@pytest.mark.parametrize("name", PROCESSORS)
def test_processors_restart_check_health_and_wait_for_healthy_dependencies(
    services: dict[str, Any], name: str
) -> None:
    service = services[name]
    assert service["restart"] == "unless-stopped"
    test = service["healthcheck"]["test"]
    assert test[:4] == ["CMD", "python", "-m", "processors.probe"]
    assert service["depends_on"]["redpanda"] == {"condition": "service_healthy", "required": True}
    if name == "bridge":
        assert test[4:] == ["--bridge"]
        assert service["depends_on"]["rabbitmq"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", PROCESSORS)
def test_processors_use_the_server_store_and_share_no_files(
    services: dict[str, Any], name: str
) -> None:
    service = services[name]
    env = service["environment"]
    assert env["STORE_URL"] == DEPLOYMENT_ENV["STORE_URL"]
    assert not service.get("volumes")  # nothing mounted that another container could share
    for secret in ("COSMOS_KEY", "JWT_SECRET", "AZURE_BLOB_CONNECTION_STRING"):
        assert env[secret] == DEPLOYMENT_ENV[secret]
    assert env["RABBITMQ_URL"] == "amqp://guest:guest@rabbitmq:5672/"
    assert env["BROKER_URL"] == "kafka://redpanda:9092"


def test_worker_pools_run_every_agent_once_each_in_a_group_of_its_own(
    services: dict[str, Any],
) -> None:
    """The light worker leaves email to the email pool: together the workers run every agent
    of `all` exactly once, and no two pools share a consumer group."""
    runs: list[str] = []
    groups = set()
    for name in WORKERS:
        env = services[name]["environment"]
        settings = Settings(**{k: env[k] for k in ("CONSUMER_TYPE", "AGENTS") if k in env})
        agents = select_agents(settings)
        runs += agents
        groups.add(consumer_group(settings, agents))
    assert sorted(runs) == sorted(ROLE_AGENTS[Settings().CONSUMER_TYPE])
    assert len(groups) == len(WORKERS)
    assert services["email-pool"]["environment"]["AGENTS"] == "process_emails"


# --- the Dockerfile -------------------------------------------------------------------------


def _stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), split into stages."""
    text = (REPO_ROOT / "Dockerfile").read_text()
    lines = re.sub(r"\\\n", " ", text).splitlines()
    stages: list[list[str]] = []
    for line in (raw.strip() for raw in lines):
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def test_hadolint_passes() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    done = subprocess.run(
        [str(hadolint), "--no-color", "Dockerfile"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_is_built_in_stages_and_runs_unprivileged() -> None:
    build, runtime = _stages()
    assert build[0].endswith(" AS build")
    assert any(line.startswith("COPY --from=build /opt/venv") for line in runtime)
    users = [line.split()[1] for line in runtime if line.startswith("USER ")]
    assert users, "the runtime stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    assert runtime[-1] == 'CMD ["integration-processors", "worker"]'


def test_the_runtime_stage_installs_only_runtime_debian_packages() -> None:
    _, runtime = _stages()
    installs = [line for line in runtime if "apt-get install" in line]
    assert len(installs) == 1
    words = installs[0].split("apt-get install", 1)[1].split("&&")[0].split()
    assert {w for w in words if not w.startswith("-")} == {"tesseract-ocr", "tesseract-ocr-eng"}
    assert "rm -rf /var/lib/apt/lists/*" in installs[0]


def test_the_image_checks_health_on_health() -> None:
    _, runtime = _stages()
    checks = [line for line in runtime if line.startswith("HEALTHCHECK ")]
    assert len(checks) == 1
    assert checks[0].endswith('CMD ["python", "-m", "processors.probe"]')


def test_the_build_context_leaves_out_what_the_image_does_not_need() -> None:
    ignored = set((REPO_ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "tests", "data", ".cache", "**/__pycache__"} <= ignored


# --- the probe the health checks run --------------------------------------------------------


@pytest.fixture
def web(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """A web server whose /health answers with `status["code"]`; PORT points at it."""
    status = {"code": 200}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status["code"] if self.path == "/health" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    monkeypatch.setenv("PORT", str(server.server_port))
    monkeypatch.setenv("BRIDGE_METRICS_PORT", str(server.server_port))
    yield status
    server.shutdown()
    server.server_close()


def test_the_probe_passes_on_200_and_fails_otherwise(web: dict[str, int]) -> None:
    assert probe.main([]) == 0
    assert probe.main(["--bridge"]) == 0
    web["code"] = 503
    assert probe.main([]) == 1


def test_the_probe_fails_when_nothing_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", str(free_port()))
    assert probe.main(["--timeout", "1"]) == 1
    monkeypatch.delenv("BRIDGE_METRICS_PORT", raising=False)
    assert probe.main(["--bridge"]) == 2
