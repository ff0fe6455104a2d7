import uuid

from hypothesis import given
from hypothesis import strategies as st

from shards.ids import _NAMESPACE, shard_id


def test_same_record_same_id_and_case_of_names_does_not_matter() -> None:
    a = shard_id("t1", "salesforce", "Account", "001")
    assert a == shard_id("t1", "salesforce", "Account", "001")
    assert a == shard_id("t1", "Salesforce", "account", "001")


def test_every_part_changes_the_id() -> None:
    base = shard_id("t1", "salesforce", "Account", "001")
    assert (
        len(
            {
                base,
                shard_id("t2", "salesforce", "Account", "001"),
                shard_id("t1", "hubspot", "Account", "001"),
                shard_id("t1", "salesforce", "Contact", "001"),
                shard_id("t1", "salesforce", "Account", "002"),
            }
        )
        == 5
    )


def test_parts_cannot_run_into_each_other() -> None:
    assert shard_id("t1", "sales", "force", "x") != shard_id("t1", "salesf", "orce", "x")


@given(st.text(), st.text(), st.text(), st.text())
def test_the_id_is_the_uuid5_of_its_parts(tenant: str, provider: str, kind: str, ext: str) -> None:
    name = "\x1f".join((tenant, provider.casefold(), kind.casefold(), ext))
    assert shard_id(tenant, provider, kind, ext) == str(uuid.uuid5(_NAMESPACE, name))
