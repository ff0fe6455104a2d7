import pytest

from mappings.transforms import TransformContext, apply_transform
from processors.exceptions import MappingError
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
