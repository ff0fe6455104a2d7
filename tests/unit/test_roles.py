from pathlib import Path

import pytest

from core.settings import Settings
from processors.app import create_app

LIGHT = {
    "process_crm_records",
    "process_emails",
    "process_messages",
    "process_calendar_events",
    "link_activities",
    "ml_route",
    "ml_fields",
}
HEAVY = {"process_documents", "process_meetings"}


@pytest.mark.parametrize(
    ("role", "agents"), [("light", LIGHT), ("heavy", HEAVY), ("all", LIGHT | HEAVY)]
)
def test_each_role_starts_exactly_its_agents(tmp_path: Path, role: str, agents: set[str]) -> None:
    settings = Settings(
        CONSUMER_TYPE=role, DATA_DIR=tmp_path, BROKER_URL="kafka://127.0.0.1:1", APP_ID=f"r-{role}"
    )
    app = create_app(settings)
    assert set(app.agent_names) == agents
    assert {a.split(".")[-1] for a in app.agents} == agents
