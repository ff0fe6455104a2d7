from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.exceptions import ConfigurationError
from core.tenants import TenantConfig, TenantDirectory, _under, is_no_reply
from mappings.crm import shipped_mappings
from mappings.tenant import TenantMappings

CONFIG = """
tenants:
  t-northwind:
    internalDomains: [Northwind-Sales.com]
    excludedAddresses: [Founder.Private@gmail.com]
    excludedDomains: [newsletters.example.com]
    timeZone: America/Chicago
    linking: {autoThreshold: 0.9, suggestThreshold: 0.6}
    mappings: {}
"""


def test_file_is_read_and_addresses_classified(tmp_path: Path) -> None:
    path = tmp_path / "tenants.yaml"
    path.write_text(CONFIG)
    tenants = TenantDirectory.load(path)
    t = tenants.of("t-northwind")
    assert t.is_internal("dan.ortiz@northwind-sales.com")
    assert t.is_internal("ops@eu.northwind-sales.com")
    assert not t.is_internal("priya@fabrikam-logistics.com")
    assert not t.is_internal("x@notnorthwind-sales.com")
    assert t.is_excluded("founder.private@gmail.com")
    assert t.is_excluded("weekly@newsletters.example.com")
    assert t.is_free_mail("someone@gmail.com")
    assert str(t.zone) == "America/Chicago"
    assert t.linking.auto_threshold == 0.9
    assert tenants.of("someone-else") == TenantConfig()


def test_json_is_read_too(tmp_path: Path) -> None:
    path = tmp_path / "tenants.json"
    path.write_text('{"tenants": {"t1": {"internalDomains": ["a.com"]}}}')
    assert TenantDirectory.load(path).of("t1").is_internal("x@a.com")


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("timeZone: Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("linking: {autoThreshold: 0.4, suggestThreshold: 0.6}", "suggestThreshold"),
        ("internalDomain: [x.com]", "internalDomain: Extra inputs are not permitted"),
        ("linking: {autoThreshold: 2}", "linking.autoThreshold"),
    ],
)
def test_bad_entries_name_file_tenant_and_problem(tmp_path: Path, entry: str, problem: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(f"tenants:\n  t-bad:\n    {entry}\n")
    with pytest.raises(ConfigurationError) as caught:
        TenantDirectory.load(path)
    message = str(caught.value)
    assert "bad.yaml" in message
    assert "tenants.t-bad" in message
    assert problem in message


def test_unreadable_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"missing\.yaml"):
        TenantDirectory.load(tmp_path / "missing.yaml")
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigurationError, match="expected a mapping"):
        TenantDirectory.load(path)


@pytest.mark.parametrize(
    ("address", "automated"),
    [
        ("no-reply@acme.com", True),
        ("noreply@acme.com", True),
        ("do-not-reply@acme.com", True),
        ("mailer-daemon@acme.com", True),
        ("billing-noreply@acme.com", True),
        ("notifications@github.com", True),
        ("priya.raman@acme.com", False),
        ("norah@acme.com", False),
    ],
)
def test_no_reply_senders(address: str, automated: bool) -> None:
    assert is_no_reply(address) is automated


def test_mapping_overrides_apply_per_tenant_and_integration(tmp_path: Path) -> None:
    from mappings.crm import map_crm_event
    from streams.models import RawEvent
    from tests.fixtures import salesforce as sf

    path = tmp_path / "tenants.yaml"
    path.write_text(
        "tenants:\n  t1:\n    mappings:\n      int-salesforce-1:\n        provider: salesforce\n"
        "        entities:\n          Opportunity:\n            fields:\n"
        "              - {source: NextStep, target: nextStep, transform: string}\n"
    )
    mappings = TenantMappings.of_directory(TenantDirectory.load(path), shipped_mappings())
    event = sf.opportunity("t1")
    event["payload"]["NextStep"] = "Send the MSA"
    raw = RawEvent.model_validate(event)
    own = mappings.of("t1", "int-salesforce-1")
    assert map_crm_event(raw, own).structured_data["nextStep"] == "Send the MSA"
    other = mappings.of("t2", "int-salesforce-1")
    assert "nextStep" not in map_crm_event(raw, other).structured_data


def test_bad_mapping_override_is_refused_at_load(tmp_path: Path) -> None:
    path = tmp_path / "tenants.yaml"
    path.write_text(
        "tenants:\n  t1:\n    mappings:\n      int-1:\n        provider: salesforce\n"
        "        entities:\n          Opportunity:\n            fields:\n"
        "              - {source: Amount, target: amount, transform: money}\n"
    )
    tenants = TenantDirectory.load(path)  # the kernel reads the file; mappings validate it
    with pytest.raises(ConfigurationError) as caught:
        TenantMappings.of_directory(tenants, shipped_mappings())
    assert "tenants.yaml" in str(caught.value)
    assert "tenants.t1.mappings" in str(caught.value)
    assert "unknown transform 'money'" in str(caught.value)


_LABEL = st.sampled_from(["acme", "com", "eu", "co", "uk", "a", "acme-eu", ""])
_DOMAIN = st.lists(_LABEL, min_size=0, max_size=4).map(".".join)


@given(domain=_DOMAIN, domains=st.frozensets(_DOMAIN, max_size=4))
def test_a_domain_is_under_a_configured_one_exactly_when_it_equals_it_or_ends_at_a_dot(
    domain: str, domains: frozenset[str]
) -> None:
    """The per-level look-up says what comparing with each configured domain said (a
    blank one, which configurations no longer keep, aside)."""
    assert _under(domain, domains) == any(d and (domain == d or domain.endswith(f".{d}"))
                                          for d in domains)  # fmt: skip


def test_blank_domains_in_a_configuration_are_left_out() -> None:
    config = TenantConfig.model_validate({"internalDomains": ["Northwind.com ", " ", ""]})
    assert config.internal_domains == frozenset({"northwind.com"})
    assert not config.is_internal("robot@")
