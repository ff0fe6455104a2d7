from pathlib import Path

import pytest

from core.exceptions import ConfigurationError
from core.settings import Settings
from processors.app import PRODUCER_BUFFER_BATCHES, ProcessorsApp, create_app

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


def _app(tmp_path: Path, role: str, agents: str) -> ProcessorsApp:
    return create_app(
        Settings(
            CONSUMER_TYPE=role,
            AGENTS=agents,
            DATA_DIR=tmp_path,
            BROKER_URL="kafka://127.0.0.1:1",
            APP_ID="r",
        )
    )


def test_agents_narrow_the_role_and_join_a_group_of_their_own(tmp_path: Path) -> None:
    app = _app(tmp_path, "all", "process_emails, link_activities")
    assert app.agent_names == ["process_emails", "link_activities"]
    assert {a.split(".")[-1] for a in app.agents} == {"process_emails", "link_activities"}
    assert app.conf.id == "r.link_activities.process_emails"
    assert not app.tables  # the ML table lives with `ml_fields` only


def test_exclusions_keep_the_rest_of_the_role(tmp_path: Path) -> None:
    app = _app(tmp_path, "light", "-process_emails")
    assert set(app.agent_names) == LIGHT - {"process_emails"}
    assert app.conf.id == "r." + ".".join(sorted(LIGHT - {"process_emails"}))
    assert set(app.tables) == {"ml_fields"}


def test_the_same_set_however_written_is_the_same_group(tmp_path: Path) -> None:
    one = _app(tmp_path / "a", "heavy", "process_meetings,process_documents")
    other = _app(tmp_path / "b", "all", "process_documents,process_meetings")
    assert one.conf.id == other.conf.id == "r.process_documents.process_meetings"


def test_without_agents_the_group_is_the_app_id(tmp_path: Path) -> None:
    assert _app(tmp_path, "light", "").conf.id == "r"
    assert _app(tmp_path / "all", "all", "").conf.id == "r"


def test_a_role_without_the_table_never_shares_the_table_holders_group(tmp_path: Path) -> None:
    # Faust's assignor: a table-less leader assigns table holders changelog partitions
    # that disagree with their own view (standbys) and their coordinator dies.
    heavy = _app(tmp_path, "heavy", "")
    assert not heavy.tables
    assert heavy.conf.id == "r.process_documents.process_meetings"


def test_agents_are_read_comma_separated_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("AGENTS", " process_emails,,link_activities ")
    assert Settings().AGENTS == ("process_emails", "link_activities")


@pytest.mark.parametrize(
    ("role", "agents", "problem"),
    [
        ("all", "process_email", "'process_email' is not an agent"),
        ("heavy", "process_emails", "'process_emails' is not an agent of CONSUMER_TYPE=heavy"),
        ("light", "process_emails,-link_activities", "either names or exclusions"),
        ("heavy", "-process_documents,-process_meetings", "leaves no agent"),
    ],
)
def test_a_bad_selection_stops_start_up_with_the_reason(
    tmp_path: Path, role: str, agents: str, problem: str
) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        _app(tmp_path, role, agents)


async def test_the_producer_buffers_table_writes_of_a_few_batches(tmp_path: Path) -> None:
    """Faust's own buffer of changelog records (100) held a batch's ML-field writes."""
    settings = Settings(
        CONSUMER_TYPE="light", DATA_DIR=tmp_path, BROKER_URL="kafka://127.0.0.1:1",
        AGENT_BATCH_SIZE=300, APP_ID="r",
    )  # fmt: skip
    app = create_app(settings)
    assert app.producer.buffer.max_messages == PRODUCER_BUFFER_BATCHES * 300
