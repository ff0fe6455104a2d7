from shards.ids import shard_id


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
