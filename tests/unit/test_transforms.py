import pytest

from core.exceptions import MappingError
from mappings.transforms import TransformContext, apply_transform
from shards.ids import shard_id

CTX = TransformContext("t1", "salesforce", {})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://www.Acme.co.uk/x", "acme.co.uk"),
        ("acme.com", "acme.com"),
        ("http://sub.acme.com:8080/path?q=1", "sub.acme.com"),
        ("WWW.ACME.COM", "acme.com"),
        ("sales@Acme.com", "acme.com"),
        (None, None),
    ],
)
def test_domain_from_websites(value: object, expected: str | None) -> None:
    assert apply_transform("domain", value, CTX) == expected


def test_domain_without_a_dot_is_refused() -> None:
    with pytest.raises(MappingError, match="no domain"):
        apply_transform("domain", "localhost", CTX)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-03-11T14:02:11.000+0000", "2025-03-11T14:02:11Z"),
        ("2025-03-11T09:02:11-05:00", "2025-03-11T14:02:11Z"),
        ("2025-03-11T14:02:11.250Z", "2025-03-11T14:02:11.250Z"),
        ("2025-03-11T14:02:11", "2025-03-11T14:02:11Z"),
    ],
)
def test_datetimes_become_utc_rfc3339(value: str, expected: str) -> None:
    assert apply_transform("datetime", value, CTX) == expected


def test_date_keeps_calendar_day_and_refuses_garbage() -> None:
    assert apply_transform("date", "2026-12-18", CTX) == "2026-12-18"
    with pytest.raises(MappingError, match="not an ISO 8601"):
        apply_transform("date", "next tuesday", CTX)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(185000, 185000), ("1,250.50", 1250.5), ("42", 42), ("", None), (2.5, 2.5)],
)
def test_numbers(value: object, expected: object) -> None:
    assert apply_transform("number", value, CTX) == expected


def test_number_refuses_text_and_booleans() -> None:
    with pytest.raises(MappingError):
        apply_transform("number", "lots", CTX)
    with pytest.raises(MappingError):
        apply_transform("number", True, CTX)


@pytest.mark.parametrize(
    ("value", "expected"), [(True, True), ("false", False), ("Yes", True), ("0", False)]
)
def test_booleans(value: object, expected: bool) -> None:
    assert apply_transform("boolean", value, CTX) is expected


def test_email_is_lower_cased_and_checked() -> None:
    assert apply_transform("email", " Priya.Raman@Fabrikam.com ", CTX) == "priya.raman@fabrikam.com"
    with pytest.raises(MappingError, match="not an email"):
        apply_transform("email", "priya at fabrikam", CTX)


def test_reference_is_the_target_shard_id() -> None:
    ctx = TransformContext("t1", "salesforce", {"entityType": "Account"})
    assert apply_transform("reference", "001A", ctx) == shard_id(
        "t1", "salesforce", "Account", "001A"
    )


def test_concat_skips_blanks() -> None:
    assert apply_transform("concat", ["Priya", None, " Raman "], CTX) == "Priya Raman"
    assert apply_transform("concat", [None, ""], CTX) is None


@pytest.mark.parametrize(
    ("closed", "won", "status"),
    [(False, False, "open"), (True, True, "closed_won"), (True, False, "closed_lost")],
)
def test_salesforce_status(closed: bool, won: bool, status: str) -> None:
    assert apply_transform("salesforce_status", [closed, won], CTX) == status


def ctx(provider: str = "salesforce", **options: object) -> TransformContext:
    return TransformContext("t1", provider, dict(options))


@pytest.mark.parametrize(
    ("value", "options", "expected"),
    [
        (
            "0.59999999999999997779553950749686919152736663818359375",
            {"scale": 100, "digits": 2},
            60,
        ),
        ("0.255", {"scale": 100}, 25.5),
        (2.345, {"digits": 2}, 2.34),  # banker's rounding of the exact decimal
        (185000.0, {}, 185000),
        ("420000000", {}, 420000000),
    ],
)
def test_number_scale_digits_and_integral_floats(
    value: object, options: dict, expected: object
) -> None:
    result = apply_transform("number", value, ctx(**options))
    assert result == expected
    assert type(result) is type(expected)


def test_number_refuses_infinity_and_nan() -> None:
    for text in ("Infinity", "NaN"):
        with pytest.raises(MappingError, match="not a finite number"):
            apply_transform("number", text, CTX)


def test_integer_from_text_and_float() -> None:
    assert apply_transform("integer", "1800", CTX) == 1800
    assert apply_transform("integer", 1800.0, CTX) == 1800


@pytest.mark.parametrize(("value", "expected"), [(True, False), (False, True), ("true", False)])
def test_boolean_not_inverts(value: object, expected: bool) -> None:
    assert apply_transform("boolean", value, ctx(**{"not": True})) is expected


def test_boolean_not_keeps_absence() -> None:
    assert apply_transform("boolean", None, ctx(**{"not": True})) is None
    with pytest.raises(MappingError, match="not a boolean"):
        apply_transform("boolean", "maybe", CTX)


@pytest.mark.parametrize(
    ("value", "options", "expected"),
    [
        (1793610900000, {}, "2026-11-02T09:15:00Z"),
        ("1793610900000", {}, "2026-11-02T09:15:00Z"),
        ("1793610900123", {}, "2026-11-02T09:15:00.123Z"),
        (1793610900, {"epoch": "s"}, "2026-11-02T09:15:00Z"),
        ("2026-11-02T09:15:00Z", {}, "2026-11-02T09:15:00Z"),
    ],
)
def test_datetime_reads_epoch_milliseconds_and_iso(
    value: object, options: dict, expected: str
) -> None:
    assert apply_transform("datetime", value, ctx(**options)) == expected


def test_date_from_epoch_and_datetime_text() -> None:
    assert apply_transform("date", 1797613200000, CTX) == "2026-12-18"
    assert apply_transform("date", "2026-12-18T17:00:00Z", CTX) == "2026-12-18"
    assert apply_transform("date", "20261218", CTX) == "2026-12-18"  # ISO basic, not epoch
    with pytest.raises(MappingError, match="not a date or time"):
        apply_transform("date", True, CTX)


def test_email_list_merges_splits_lowercases_and_dedupes() -> None:
    values = [
        "Priya.Raman@Fabrikam.com",
        "priya@home.example;PRIYA.RAMAN@fabrikam.com, not-an-address",
        None,
        ["p.raman@gmail.com", "priya@home.example"],
    ]
    assert apply_transform("email_list", values, CTX) == [
        "priya.raman@fabrikam.com",
        "priya@home.example",
        "p.raman@gmail.com",
    ]


def test_email_list_absent_and_empty() -> None:
    assert apply_transform("email_list", [None, None], CTX) is None
    assert apply_transform("email_list", ["nope"], CTX) == []


def test_domain_list_from_websites_domains_and_addresses_without_free_mail() -> None:
    values = [
        "fabrikam-logistics.com",
        "fabrikam.com; Fabrikam-Freight.com",
        "https://www.fabrikam-logistics.com/about",
        "founder@gmail.com",
        "localhost",
    ]
    assert apply_transform("domain_list", values, CTX) == [
        "fabrikam-logistics.com",
        "fabrikam.com",
        "fabrikam-freight.com",
    ]
    assert apply_transform("domain_list", [None], CTX) is None


def test_reference_picks_the_id_of_the_wanted_type_from_pairs() -> None:
    account = ctx("dynamics", entityType="account")
    assert apply_transform("reference", ["a1", "account"], account) == shard_id(
        "t1", "dynamics", "account", "a1"
    )
    assert apply_transform("reference", ["c1", "contact"], account) is None
    assert apply_transform("reference", ["a1", None], account) == shard_id(
        "t1", "dynamics", "account", "a1"
    )
    opportunity = ctx("dynamics", entityType="opportunity")
    pairs = ["c1", "contact", "o1", "opportunity"]
    assert apply_transform("reference", pairs, opportunity) == shard_id(
        "t1", "dynamics", "opportunity", "o1"
    )
    # with several pairs a missing type matches nothing: ambiguous
    assert apply_transform("reference", ["c1", None, "o1", None], opportunity) is None
    with pytest.raises(MappingError, match="pairs"):
        apply_transform("reference", ["o1", "opportunity", "x"], opportunity)


def test_reference_needs_its_entity_type() -> None:
    with pytest.raises(MappingError, match=r"options\.entityType"):
        apply_transform("reference", "001A", CTX)


def test_references_map_a_list_of_ids_to_shard_ids() -> None:
    contacts = ctx("hubspot", entityType="contacts")
    assert apply_transform("references", ["51001", None, "51002", "51001", ""], contacts) == [
        shard_id("t1", "hubspot", "contacts", "51001"),
        shard_id("t1", "hubspot", "contacts", "51002"),
    ]
    assert apply_transform("references", None, contacts) is None
    assert apply_transform("references", [], contacts) == []


def test_contact_roles_from_a_list_of_ids() -> None:
    contacts = ctx("hubspot", entityType="contacts")
    assert apply_transform("contact_roles", ["51001", "51002", "51001"], contacts) == [
        {"contactId": shard_id("t1", "hubspot", "contacts", "51001")},
        {"contactId": shard_id("t1", "hubspot", "contacts", "51002")},
    ]
    assert apply_transform("contact_roles", None, contacts) is None
    assert apply_transform("contact_roles", [], contacts) == []


def test_contact_roles_from_parallel_lists() -> None:
    contacts = ctx(entityType="Contact")
    ids = ["003A", "003B", "003A"]
    roles = ["Decision Maker", None, "Other"]
    primaries = [False, "false", True]
    first, second = (shard_id("t1", "salesforce", "Contact", c) for c in ("003A", "003B"))
    assert apply_transform("contact_roles", [ids, roles, primaries], contacts) == [
        {"contactId": first, "role": "Decision Maker", "isPrimary": True},
        {"contactId": second, "isPrimary": False},
    ]
    assert apply_transform("contact_roles", [None, None, None], contacts) is None


def test_contact_roles_of_a_single_primary_contact() -> None:
    primary = ctx("dynamics", entityType="contact", primary=True)
    assert apply_transform("contact_roles", "c4f0", primary) == [
        {"contactId": shard_id("t1", "dynamics", "contact", "c4f0"), "isPrimary": True}
    ]


def test_select_by_type_takes_the_value_on_the_wanted_side() -> None:
    contact = ctx("dynamics", type="contact")
    values = [None, "opportunity", "Stakeholder", "contact"]
    assert apply_transform("select_by_type", values, contact) == "Stakeholder"
    assert apply_transform("select_by_type", ["Stakeholder", "Contact", None, "x"], contact) == (
        "Stakeholder"
    )
    with pytest.raises(MappingError, match=r"options\.type"):
        apply_transform("select_by_type", values, CTX)


@pytest.mark.parametrize(
    ("values", "options", "status"),
    [
        ("closedwon", {}, "closed_won"),
        ("closedlost", {}, "closed_lost"),
        ("ClosedWon", {}, "closed_won"),
        ("appointmentscheduled", {}, "open"),
        (["closedwon", None, None], {}, "closed_won"),
        (["98213340", "true", "true"], {}, "closed_won"),
        (["98213340", "true", "false"], {}, "closed_lost"),
        (["closedwon", "false", "false"], {}, "open"),  # HubSpot's flags decide
        ("won_custom", {"won": ["won_custom"]}, "closed_won"),
        ("lost_custom", {"lost": ["lost_custom"]}, "closed_lost"),
    ],
)
def test_hubspot_status(values: object, options: dict, status: str) -> None:
    assert apply_transform("hubspot_status", values, ctx("hubspot", **options)) == status


def test_hubspot_status_outputs_and_absence() -> None:
    hubspot = "hubspot"
    assert apply_transform("hubspot_status", "closedwon", ctx(hubspot, output="isWon")) is True
    assert apply_transform("hubspot_status", "closedlost", ctx(hubspot, output="isWon")) is False
    assert apply_transform("hubspot_status", "closedlost", ctx(hubspot, output="isClosed")) is True
    assert apply_transform("hubspot_status", "qualified", ctx(hubspot, output="isClosed")) is False
    assert apply_transform("hubspot_status", [None, None, None], ctx(hubspot)) is None
    with pytest.raises(MappingError, match="unknown output"):
        apply_transform("hubspot_status", "closedwon", ctx(hubspot, output="won"))


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (0, "open"),
        (1, "closed_won"),
        (2, "closed_lost"),
        ("1", "closed_won"),
        ("Open", "open"),
        ("Won", "closed_won"),
        ("lost", "closed_lost"),
    ],
)
def test_dynamics_status(value: object, status: str) -> None:
    assert apply_transform("dynamics_status", value, ctx("dynamics")) == status


def test_dynamics_status_outputs_absence_and_unknown_codes() -> None:
    assert apply_transform("dynamics_status", 1, ctx("dynamics", output="isWon")) is True
    assert apply_transform("dynamics_status", 2, ctx("dynamics", output="isClosed")) is True
    assert apply_transform("dynamics_status", None, ctx("dynamics")) is None
    with pytest.raises(MappingError, match="statecode"):
        apply_transform("dynamics_status", 3, ctx("dynamics"))


DELETED_CONTEXT = "https://org.crm.dynamics.com/api/data/v9.2/$metadata#accounts/$deletedEntity"
LIVE_CONTEXT = "https://org.crm.dynamics.com/api/data/v9.2/$metadata#accounts/$entity"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([DELETED_CONTEXT, None, "deleted"], True),
        ([DELETED_CONTEXT, None, None], True),
        ([DELETED_CONTEXT, None, "changed"], False),
        ([None, {"reason": "deleted"}, None], True),
        ([None, {"reason": "changed"}, None], False),
        ([LIVE_CONTEXT, None, None, 0], False),
        ([LIVE_CONTEXT, None, None, 1], True),
        ([LIVE_CONTEXT, None, None, "Inactive"], True),
        ([LIVE_CONTEXT, None, None], False),
    ],
)
def test_dynamics_deleted(values: list, expected: bool) -> None:
    inactive = ctx("dynamics", inactive=[1, "Inactive"])
    assert apply_transform("dynamics_deleted", values, inactive) is expected


def test_dynamics_deleted_without_inactive_states_ignores_statecode() -> None:
    assert apply_transform("dynamics_deleted", [LIVE_CONTEXT, None, None, 1], ctx()) is False
