"""CRM look-ups read once per batch of linking evaluations (`linking.reads`), on the
embedded store: what is asked of the store, and what a batch may and may not reuse."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from agents.linking import _crm_changes
from core.exceptions import ConcurrencyError
from core.retries import retry_store
from core.tenants import TenantConfig, TenantDirectory
from linking import service
from linking.reads import CrmReads
from linking.service import Linker
from processors.startup import ensure_shard_types
from shards.ids import shard_id
from shards.kinds import ACTIVITY_TYPES
from shards.model import ShardDraft
from shards.sqlite import SqliteShardStore
from streams.incoming import IncomingEvent
from streams.models import shard_event
from tests.fixtures import shards
from tests.fixtures.shards import NullLinkWriter

T = "t-reads"
TENANTS = TenantDirectory({T: TenantConfig(internal_domains=frozenset({"northwind.com"}))})


def draft(kind: str, shard_type: str, external: str, data: dict[str, Any]) -> ShardDraft:
    # a changed record is a new event (its own event id)
    return shards.draft(T, "test", kind, shard_type, external, data,
                        event_id=f"e-{kind}-{external}-{len(str(data))}")  # fmt: skip


ACCOUNT = shard_id(T, "test", "account", "a1")


def contact(n: int, email: str) -> ShardDraft:
    return draft("contact", "Contact", f"c{n}",
                 {"fullName": f"Person {n}", "email": email, "accountId": ACCOUNT})  # fmt: skip


def email(n: int, sender: str) -> ShardDraft:
    return draft("email", "Email", f"m{n}", {
        "messageId": f"<m{n}@x>", "threadId": f"t{n}", "subject": "Pricing",
        "from": {"email": sender, "name": None},
        "to": [{"email": "dan@northwind.com", "name": "Dan"}], "cc": [], "bcc": [],
        "participants": [sender, "dan@northwind.com"], "sentAt": "2026-11-20T10:00:00Z",
        "direction": "inbound", "attachments": [], "bodyTruncated": False,
    })  # fmt: skip


class Counting:
    """The store, counting the reads asked of it."""

    def __init__(self, store: SqliteShardStore) -> None:
        self.store = store
        self.asked: Counter[tuple[str, ...]] = Counter()

    async def get(self, tenant_id: str, shard_id: str) -> Any:
        self.asked[("get", shard_id)] += 1
        return await self.store.get(tenant_id, shard_id)

    async def find(self, tenant_id: str, shard_type: str, key: str, values: Any) -> Any:
        values = sorted(values)
        self.asked[("find", shard_type, key, *values)] += 1
        return await self.store.find(tenant_id, shard_type, key, values)

    async def find_views(
        self, tenant_id: str, shard_type: str, key: str, values: Any, fields: Any
    ) -> Any:
        values = sorted(values)
        self.asked[("find_views", shard_type, key, *values)] += 1
        return await self.store.find_views(tenant_id, shard_type, key, values, fields)

    async def get_many(self, tenant_id: str, shard_ids: Any) -> Any:
        self.asked[("get_many", *sorted(shard_ids))] += 1
        return await self.store.get_many(tenant_id, shard_ids)

    async def shard_types_present(self, tenant_id: str, shard_types: Any) -> Any:
        self.asked[("shard_types_present", *sorted(shard_types))] += 1
        return await self.store.shard_types_present(tenant_id, shard_types)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


async def seeded(tmp_path: Path) -> SqliteShardStore:
    store = SqliteShardStore(tmp_path / "shards.sqlite3")
    await store.__aenter__()
    await ensure_shard_types(store)
    await store.upsert_many([
        draft("account", "Account", "a1", {"name": "Fabrikam", "domain": "fabrikam.com"}),
        contact(1, "priya@fabrikam.com"),
        contact(2, "li@fabrikam.com"),
        draft("opportunity", "Opportunity", "o1", {
            "name": "Route Optimization", "status": "open", "closeDate": "2027-02-01",
            "accountId": ACCOUNT}),
    ])  # fmt: skip
    return store


async def test_a_look_up_asks_the_store_only_for_values_not_read(tmp_path: Path) -> None:
    store = await seeded(tmp_path)
    try:
        counting = Counting(store)
        reads = CrmReads(counting, max_age=60)  # type: ignore[arg-type]
        first = await reads.find(T, "Contact", "email", ["priya@fabrikam.com"])
        both = await reads.find(T, "Contact", "email", ["li@fabrikam.com", "priya@fabrikam.com"])
        again = await reads.find(T, "Contact", "email", ["priya@fabrikam.com", "x@y.com"])
        assert [s.structured_data["email"] for s in first] == ["priya@fabrikam.com"]
        assert sorted(s.structured_data["email"] for s in both) == [
            "li@fabrikam.com", "priya@fabrikam.com"]  # fmt: skip
        assert [s.structured_data["email"] for s in again] == ["priya@fabrikam.com"]
        finds = [k for k in counting.asked if k[0] == "find"]
        assert finds == [
            ("find", "Contact", "email", "priya@fabrikam.com"),
            ("find", "Contact", "email", "li@fabrikam.com"),
            ("find", "Contact", "email", "x@y.com"),
        ]
        # a shard found is a shard got; activities are never kept
        account = await reads.get(T, ACCOUNT)
        assert account is not None
        assert await reads.get(T, ACCOUNT) is account
        assert counting.asked[("get", ACCOUNT)] == 1
        await store.upsert_many([email(1, "priya@fabrikam.com")])
        mail = shard_id(T, "test", "email", "m1")
        await reads.get(T, mail)
        await reads.get(T, mail)
        assert counting.asked[("get", mail)] == 2
        await reads.find(T, "Email", "threadId", ["t1"])
        await reads.find(T, "Email", "threadId", ["t1"])
        assert counting.asked[("find", "Email", "threadId", "t1")] == 2
    finally:
        await store.__aexit__(None, None, None)


async def test_a_batch_reads_each_crm_record_once_and_links_as_without(tmp_path: Path) -> None:
    store = await seeded(tmp_path)
    try:
        mails = [email(n, "priya@fabrikam.com" if n % 2 else "li@fabrikam.com") for n in range(6)]
        await store.upsert_many(mails)
        counting = Counting(store)
        linker = Linker(counting, TENANTS, NullLinkWriter())  # type: ignore[arg-type]
        with linker.batch(max_age=60):
            for m in mails:
                await linker.link(T, m.id)
        contacts = sum(n for k, n in counting.asked.items() if k[:2] == ("find", "Contact"))
        assert contacts == 2  # one per address, not one per email
        # reads older than max_age are read again (a record written since is seen)
        counting.asked.clear()
        with linker.batch(max_age=0):
            for m in mails:
                await linker.link(T, m.id)
        contacts = sum(n for k, n in counting.asked.items() if k[:2] == ("find", "Contact"))
        assert contacts == 6
        linked = [await store.get(T, m.id) for m in mails]
        targets = [sorted(k.target_shard_type for k in s.links) for s in linked if s]
        assert targets == [["Account", "Contact", "Opportunity"]] * 6
    finally:
        await store.__aexit__(None, None, None)


async def test_outside_a_batch_every_evaluation_reads_afresh(tmp_path: Path) -> None:
    store = await seeded(tmp_path)
    try:
        await store.upsert_many([email(1, "new@fabrikam.com")])
        linker = Linker(store, TENANTS, NullLinkWriter())
        mail = shard_id(T, "test", "email", "m1")
        with linker.batch():
            await linker.link(T, mail)
        before = await store.get(T, mail)
        assert before is not None
        assert "Contact" not in {k.target_shard_type for k in before.links}
        # the contact gets the address; an evaluation after the batch sees it
        await store.upsert_many([contact(3, "new@fabrikam.com")])
        await linker.link(T, mail)
        after = await store.get(T, mail)
        assert after is not None
        assert "Contact" in {k.target_shard_type for k in after.links}
    finally:
        await store.__aexit__(None, None, None)


async def test_a_batchs_crm_changes_are_looked_up_together(tmp_path: Path) -> None:
    """What 40 new contacts concern: the same evaluations as one contact at a time, with
    one index read per key and activity type for all of them."""
    store = await seeded(tmp_path)
    try:
        people = [contact(10 + n, f"p{n}@fabrikam.com") for n in range(40)]
        mails = [email(n, f"p{n}@fabrikam.com") for n in range(0, 40, 3)]
        written = await store.upsert_many([*people, *mails])
        events = [shard_event(o) for o in written if o.shard.shard_type == "Contact"]
        one_by_one = Linker(store, TENANTS, NullLinkWriter())
        expected = {r.shard_id for e in events for r in await one_by_one.requested([e])}
        assert expected == {m.id for m in mails}
        counting = Counting(store)
        together = Linker(counting, TENANTS, NullLinkWriter())  # type: ignore[arg-type]
        asked = await together.requested(events)
        assert {r.shard_id for r in asked} == expected
        finds = sum(n for k, n in counting.asked.items() if k[0] in ("find", "find_views"))
        # (participant, reference) x the one activity type the tenant has (Email), not x 40
        assert finds == 2
    finally:
        await store.__aexit__(None, None, None)


async def test_crm_changes_before_any_activity_look_nothing_up(tmp_path: Path) -> None:
    """A CRM backfill before mail (a new customer connects its CRM first): its changes
    concern nothing and read only which activity types the tenant has; the first email
    stored is found by the next change, and a type seen once is not asked for again."""
    store = await seeded(tmp_path)
    try:
        counting = Counting(store)
        linker = Linker(counting, TENANTS, NullLinkWriter())  # type: ignore[arg-type]
        people = await store.upsert_many([contact(10 + n, f"p{n}@fabrikam.com") for n in range(5)])
        assert await linker.requested([shard_event(o) for o in people]) == []
        assert counting.asked == Counter({("shard_types_present", *sorted(ACTIVITY_TYPES)): 1})

        mail = email(1, "p1@fabrikam.com")
        await store.upsert_many([mail])
        changed = await store.upsert_many([contact(11, "p1@fabrikam.com")])  # to the mail's sender
        counting.asked.clear()
        asked = await linker.requested([shard_event(o) for o in changed])
        assert [r.shard_id for r in asked] == [mail.id]
        assert counting.asked[("shard_types_present", *sorted(ACTIVITY_TYPES))] == 1
        assert not any(k[1] != "Email" for k in counting.asked if k[0] == "find_views")

        counting.asked.clear()
        assert [r.shard_id for r in await linker.requested([shard_event(o) for o in changed])] == [
            mail.id
        ]
        assert counting.asked[("shard_types_present", *sorted(ACTIVITY_TYPES - {"Email"}))] == 1
    finally:
        await store.__aexit__(None, None, None)


async def test_a_crm_change_that_breaks_the_batch_look_up_is_its_own_dead_letter(
    tmp_path: Path,
) -> None:
    """`agents.linking._crm_changes`: the batch's look-up fails, so it goes one change at a
    time; the change that fails again is one dead letter, the others ask as before."""
    store = await seeded(tmp_path)
    try:
        people = [contact(10 + n, f"p{n}@fabrikam.com") for n in range(3)]
        written = await store.upsert_many([*people, *(email(n, f"p{n}@fabrikam.com")
                                                      for n in range(3))])  # fmt: skip
        events = [shard_event(o) for o in written if o.shard.shard_type == "Contact"]
        poisoned = events[1].shard_id

        class Hostile(Counting):
            async def get_views(self, tenant_id: str, ids: Any, fields: Any) -> Any:
                ids = list(ids)
                if poisoned in ids:
                    raise ValueError("a record no look-up survives")
                return await self.store.get_views(tenant_id, ids, fields)

        linker = Linker(Hostile(store), TENANTS, NullLinkWriter())  # type: ignore[arg-type]
        crm = [(IncomingEvent(e.event_id.encode(), None, "shard.events", 0, n), e)
               for n, e in enumerate(events)]  # fmt: skip
        letters: list[Any] = []
        follow_ups: dict[tuple[str, str], Any] = {}
        await _crm_changes(crm, linker, partial(retry_store, attempts=1, max_delay=0),
                           letters, follow_ups)  # fmt: skip
        assert [(letter.stage, letter.source["sourceOffset"]) for letter in letters] == [
            ("link", "1")
        ]
        mails = {shard_id(T, "test", "email", f"m{n}") for n in (0, 2)}
        assert {shard for _, shard in follow_ups} == mails
    finally:
        await store.__aexit__(None, None, None)


async def test_activities_read_ahead_are_used_once_and_a_stale_one_is_not_written(
    tmp_path: Path,
) -> None:
    """`prefetch` reads a batch's activities in one go; each evaluation takes its version
    once (no `get`), a later one reads the store. A version read ahead that changed since
    is not written over: the relink fails on its etag, and the next evaluation reads the
    new version and links it."""
    store = await seeded(tmp_path)
    try:
        first, second = email(1, "priya@fabrikam.com"), email(2, "li@fabrikam.com")
        await store.upsert_many([first, second])
        counting = Counting(store)
        linker = Linker(counting, TENANTS, NullLinkWriter())  # type: ignore[arg-type]
        await linker.prefetch([(T, first.id)])  # outside a batch: nothing is read ahead
        with linker.batch(max_age=60):
            await linker.prefetch([(T, first.id), (T, second.id)])
            assert await linker.link(T, first.id)
            assert counting.asked[("get", first.id)] == 0
            assert not await linker.link(T, first.id)  # again: read from the store
            assert counting.asked[("get", first.id)] == 1
            # a new version of the second lands after it was read ahead
            revised = {**second.structured_data, "subject": "Pricing, revised"}
            (written,) = await store.upsert_many([draft("email", "Email", "m2", revised)])
            assert written.shard.version == 2
            with pytest.raises(ConcurrencyError):
                await linker.link(T, second.id)
            assert await linker.link(T, second.id)
        stored = await store.get(T, second.id)
        assert stored is not None and stored.version == 3 and stored.links  # relinked
        assert stored.structured_data["subject"] == "Pricing, revised"
    finally:
        await store.__aexit__(None, None, None)


async def test_an_email_reads_its_thread_of_emails_only(tmp_path: Path) -> None:
    """Thread ids carry their integration (a chat one its channel too): an email's thread
    is read among emails, a message's among messages, and nothing else."""
    store = await seeded(tmp_path)
    try:
        first, reply = email(1, "priya@fabrikam.com"), email(2, "priya@fabrikam.com")
        later = {"threadId": "t1", "sentAt": "2026-11-20T11:00:00Z"}
        reply = replace(reply, structured_data={**reply.structured_data, **later})
        await store.upsert_many([first, reply])
        counting = Counting(store)
        linker = Linker(counting, TENANTS, NullLinkWriter())  # type: ignore[arg-type]
        assert await linker.link(T, reply.id)
        threads = [k[1:4] for k in counting.asked if k[0] == "find_views"]
        assert threads == [("Email", "threadId", "t1")]
        stored = await store.get(T, reply.id)
        assert stored is not None
        assert {k.target_shard_type for k in stored.links} >= {"Contact", "Account"}
    finally:
        await store.__aexit__(None, None, None)


async def test_a_batchs_look_ups_are_read_ahead_together_and_link_as_one_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CRM look-ups of a batch's activities read ahead are read `READ_AHEAD` activities
    at a time: one `find` per look-up for them all (no `get` of a contact's account), and
    every activity gets the links it gets when linked on its own."""
    monkeypatch.setattr(service, "READ_AHEAD", 4)
    store = await seeded(tmp_path)
    try:
        other = shard_id(T, "test", "account", "a2")
        await store.upsert_many([
            draft("account", "Account", "a2", {"name": "Contoso", "domain": "contoso.com"}),
            draft("contact", "Contact", "c9", {"fullName": "Bo", "email": "bo@gmail.com",
                                                "accountId": other}),
            draft("opportunity", "Opportunity", "o2", {
                "name": "Fleet", "status": "open", "closeDate": "2027-02-01",
                "accountId": other}),
        ])  # fmt: skip
        senders = ["priya@fabrikam.com", "bo@gmail.com", "li@fabrikam.com", "x@contoso.com",
                   "bo@gmail.com", "noreply@fabrikam.com"]  # fmt: skip
        batched = [email(n, sender) for n, sender in enumerate(senders)]
        alone = [email(10 + n, sender) for n, sender in enumerate(senders)]
        await store.upsert_many(batched + alone)
        counting = Counting(store)
        linker = Linker(counting, TENANTS, NullLinkWriter())  # type: ignore[arg-type]
        with linker.batch(max_age=60):
            await linker.prefetch([(T, m.id) for m in batched])
            for m in batched:
                await linker.link(T, m.id)
        finds: Counter[str] = Counter()
        for asked, n in counting.asked.items():
            if asked[0] == "find":
                finds[asked[1]] += n
        # the second four have no domain to look up (free mail, an automated sender)
        assert finds == {"Contact": 2, "Account": 1, "Opportunity": 2, "User": 2}
        assert not [k for k in counting.asked if k[0] == "get"]
        for m in alone:
            await Linker(store, TENANTS, NullLinkWriter()).link(T, m.id)

        async def links(mails: list[ShardDraft]) -> list[set[tuple[str, str, float]]]:
            found = [await store.get(T, m.id) for m in mails]
            return [{(k.target_shard_id, k.status, k.confidence) for k in s.links}
                    for s in found if s is not None]  # fmt: skip

        assert await links(batched) == await links(alone)
        assert all((await links(batched))[:5])
    finally:
        await store.__aexit__(None, None, None)


async def test_an_activity_that_cannot_be_read_ahead_fails_only_its_own_evaluation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading a batch's activities ahead reads each as an activity: one that breaks it
    (hostile data) is its own evaluation's failure (its own dead letter), not that of the
    evaluation that read it ahead."""
    store = await seeded(tmp_path)
    try:
        mails = [email(n, "priya@fabrikam.com") for n in range(3)]
        await store.upsert_many(mails)
        bad = mails[1].id
        read = service.activity_of

        def breaks_on_the_bad_one(shard: Any, tenant: Any) -> Any:
            if shard.id == bad:
                raise ValueError("hostile")
            return read(shard, tenant)

        monkeypatch.setattr(service, "activity_of", breaks_on_the_bad_one)
        linker = Linker(store, TENANTS, NullLinkWriter())
        with linker.batch(max_age=60):
            await linker.prefetch([(T, m.id) for m in mails])
            assert await linker.link(T, mails[0].id)
            with pytest.raises(ValueError, match="hostile"):
                await linker.link(T, bad)
            assert await linker.link(T, mails[2].id)
    finally:
        await store.__aexit__(None, None, None)
