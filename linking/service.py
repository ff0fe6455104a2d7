"""The linker: look-ups in the store, the linking rules, and writing what they decide.

Everything the rules need is fetched through the store's look-up index (contacts by
email, accounts by domain, opportunities by account, users by email, a thread's earlier
communications): nothing scans a tenant. Writes are optimistic (etag) so several
workers sharing `shard.events` partitions stay correct; a person's decision is never
overridden (`shards.links`, `decide`).
"""

from __future__ import annotations

import hashlib
import logging
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from operator import itemgetter
from typing import Any, Protocol

from core.exceptions import StoreError
from core.kept import Kept
from core.metrics import LINK_EVALUATIONS
from core.tenants import TenantConfig, TenantDirectory
from linking.activity import Activity, LookupKeys, activity_of, lookup_keys, occurred_at
from linking.decisions import Decision, decide
from linking.reads import CRM_TYPES, MAX_AGE, CrmReads
from linking.rules import Candidate, LinkContext, candidates
from shards.kinds import ACTIVITY_TYPES, kind_of
from shards.links import relinked
from shards.model import Link, Shard
from shards.store import LinkingWrite, ShardStore, ShardView
from shards.suggestions import SuggestedLink, suggestion_id
from streams.models import LinkEvent, RelinkRequest, ShardEvent

__all__ = ["LinkWriter", "Linker", "activity_order", "link_change_events"]

logger = logging.getLogger(__name__)

#: a place in a thread's order (`activity_order`), and a message with its place
Order = tuple[datetime, str]
Ordered = tuple[Order, ShardView]


@dataclass(frozen=True, slots=True)
class _Thread:
    """A thread's messages as read (`Linker._thread`), in order, with what an evaluation
    asks of them in less than one pass over them: the place of an order (bisect), the
    place of an id, and the places of the messages with links (the only ones that pass
    anything on: the rules read a thread only as the links of its earlier messages)."""

    ordered: list[Ordered]
    orders: list[Order]
    places: dict[str, int]
    linked: list[int]

    @classmethod
    def of(cls, views: Iterable[ShardView]) -> _Thread:
        ordered = _ordered(views)
        return cls(
            ordered,
            [order for order, _ in ordered],
            {view.id: i for i, (_, view) in enumerate(ordered)},
            [i for i, (_, view) in enumerate(ordered) if view.links],
        )

    def linked_before(self, at: Order, shard_id: str) -> list[ShardView]:
        """The messages with links before `at` (not `shard_id`)."""
        end = bisect_left(self.orders, at)
        return [
            view
            for i in self.linked[: bisect_left(self.linked, end)]
            if (view := self.ordered[i][1]).id != shard_id
        ]

    def is_after(self, view_id: str, at: Order) -> bool:
        """Whether the thread holds `view_id` after `at`."""
        place = self.places.get(view_id)
        return place is not None and self.orders[place] > at

    def others(self, shard_id: str) -> list[Ordered]:
        """The thread without `shard_id`."""
        return [o for o in self.ordered if o[1].id != shard_id]


#: Activity types whose messages form threads (the rules' `account_thread`, ...).
_THREADED = {t: kind.time_fields for t in ("Email", "Message") if (kind := kind_of(t))}
#: what `_concerned` reads of changed CRM records, of an account's contacts, of activities
_ADDRESS_FIELDS = ("email", "emails")
_CONCERN_FIELDS = ("domain", "domains", "accountId", *_ADDRESS_FIELDS)
_TIME_FIELDS = tuple(
    sorted({f for t in ACTIVITY_TYPES if (k := kind_of(t)) for f in k.time_fields})
)
#: `inherited` of a message with no automatic or approved link
_INHERITS_NOTHING = hashlib.sha1(b"", usedforsecurity=False).hexdigest()[:16]
#: Accounts fetched above an activity's accounts (`parentId` chains): a bound on bad data.
_MAX_ANCESTORS = 50
#: threads, and views in all, a linker keeps in order (`Linker._thread`)
_THREADS_KEPT = 1_000
_VIEWS_KEPT = 50_000
#: activities of a batch whose CRM look-ups are read together (`Linker._read_ahead`)
READ_AHEAD = 32


class LinkWriter(Protocol):
    """Where link decisions are announced (`link.events`)."""

    async def link_events(self, events: Iterable[LinkEvent]) -> None:
        """Emit the events."""


class Linker:
    """Links activities to contacts, accounts and opportunities, whatever order data arrives in.

    The result is the one a single pass over the final store gives (activities in time
    order): a CRM record re-evaluates every activity its addresses, domains, references,
    links or suggestions reach, however old; an activity whose links change re-evaluates
    the later messages of its thread (they inherit its links); a pending suggestion the
    re-evaluation no longer makes is withdrawn.
    """

    def __init__(
        self,
        store: ShardStore,
        tenants: TenantDirectory,
        writer: LinkWriter,
        *,
        cascade_limit: int = 10_000,
    ) -> None:
        self._store = store
        self._tenants = tenants
        self._writer = writer
        self._cascade_limit = cascade_limit
        #: CRM records read during the current batch (`batch`); None: read afresh
        self._reads: CrmReads | None = None
        #: (tenant, thread id) → its views as last read, and as a `_Thread` (`_thread`)
        self._threads: Kept[tuple[str, str], tuple[list[ShardView], _Thread]] = Kept(
            _THREADS_KEPT, _VIEWS_KEPT, lambda kept: len(kept[0])
        )
        #: activities read ahead for the current batch (`prefetch`), each used once
        self._prefetched: dict[tuple[str, str], Shard] = {}
        #: of those, the ones whose CRM look-ups are not read ahead yet, in their order
        self._unread: dict[tuple[str, str], None] = {}
        #: activities read as activities ahead of their evaluation (`_read_ahead`)
        self._activities: dict[tuple[str, str], tuple[Shard, Activity | None, LookupKeys]] = {}
        #: tenant → the activity types it has been seen to have shards of (`_activity_types`)
        self._activity_types_seen: dict[str, set[str]] = {}

    @contextmanager
    def batch(self, max_age: float = MAX_AGE) -> Iterator[None]:
        """Evaluations of one batch: the CRM records they look up are read once per
        `max_age` seconds (`linking.reads`); outside a batch every look-up reads the store."""
        self._reads = CrmReads(self._store, max_age)
        try:
            yield
        finally:
            self._reads = None
            self._prefetched.clear()
            self._unread.clear()
            self._activities.clear()

    async def prefetch(self, keys: Iterable[tuple[str, str]]) -> None:
        """Read the batch's activities ((tenant, shard id)) together, one statement per 500
        (the next evaluation of each takes its version from here, once; a later one reads
        the store). A version read ahead that has changed since is the one `_link` decides
        from, as if read a moment earlier: its relink write fails on the etag and is tried
        again, and the newer version's own shard event asks for an evaluation of its own.
        Within `batch` only; a failed read leaves the evaluations to read for themselves."""
        if self._reads is None:
            return
        by_tenant: dict[str, list[str]] = {}
        order = list(dict.fromkeys(keys))
        for tenant_id, shard_id in order:
            by_tenant.setdefault(tenant_id, []).append(shard_id)
        try:
            for tenant_id, ids in by_tenant.items():
                found = await self._store.get_many(tenant_id, ids)
                self._prefetched.update(((tenant_id, i), s) for i, s in found.items())
        except StoreError:
            logger.warning("reading %d activities ahead failed", sum(map(len, by_tenant.values())))
        self._unread.update((key, None) for key in order if key in self._prefetched)

    async def _read_ahead(self, first: tuple[str, str]) -> None:
        """The CRM look-ups of `first` and of up to `READ_AHEAD` - 1 activities read ahead
        after it (in the order asked for), read together: one statement per look-up for
        all of them, where each evaluation asked ~5 for itself. What is read is kept as
        any of the batch's reads is (`linking.reads`: `MAX_AGE`, a window started here);
        an evaluation after the window reads the store again. A failed read leaves the
        evaluations to read for themselves."""
        chunk = [first, *islice((k for k in self._unread if k != first), READ_AHEAD - 1)]
        wanted: dict[str, list[LookupKeys]] = {}
        for key in chunk:
            del self._unread[key]
            shard = self._prefetched.get(key)
            if shard is None:
                continue
            try:
                activity, keys = _as_activity(shard, self._tenants.of(key[0]))
            except Exception:  # noqa: BLE001, S112  # its own evaluation fails on it (and logs)
                continue
            self._activities[key] = (shard, activity, keys)
            wanted.setdefault(key[0], []).append(keys)
        reads = self._reads
        if reads is None:
            return
        reads.restart()
        try:
            for tenant_id, each in wanted.items():
                await reads.get_many(tenant_id, {r for k in each for r in k.references})
                emails = {e for k in each for e in k.emails}
                contacts = await reads.find(tenant_id, "Contact", "email", emails)
                domains = {d for k in each for d in k.domains}
                accounts = {a.id for a in await reads.find(tenant_id, "Account", "domain", domains)}
                theirs = {
                    a
                    for c in contacts
                    if isinstance(a := c.structured_data.get("accountId"), str)
                    and a not in accounts
                }
                await reads.get_many(tenant_id, theirs)
                await reads.find(tenant_id, "Opportunity", "accountId", accounts | theirs)
                internal = {e for k in each for e in k.internal_emails}
                await reads.find(tenant_id, "User", "email", internal)
        except StoreError:
            logger.warning("reading the look-ups of %d activities ahead failed", len(chunk))

    @property
    def _crm(self) -> CrmReads | ShardStore:
        """Where the rules' CRM look-ups go: the batch's reads, or the store."""
        return self._reads if self._reads is not None else self._store

    async def requested(self, events: Sequence[ShardEvent]) -> list[RelinkRequest]:
        """The evaluations these shard events ask for: a changed activity itself (and what
        inherited from it: its time or thread may have moved), and every activity a changed
        CRM record may concern."""
        todo: dict[tuple[str, str], RelinkRequest] = {}
        changed: dict[str, list[str]] = {}  # tenant → CRM records that changed
        for event in events:
            key = (event.tenant_id, event.shard_id)
            if event.shard_type in ACTIVITY_TYPES:
                todo[key] = RelinkRequest(
                    tenant_id=event.tenant_id, shard_id=event.shard_id, reason=event.type
                )
            elif event.shard_type in CRM_TYPES and not _only_ml_fields(event):
                changed.setdefault(event.tenant_id, []).append(event.shard_id)
        for tenant_id, crm_ids in changed.items():
            reason = f"{_CRM_REASON}{', '.join(crm_ids[:3])}{' ...' * (len(crm_ids) > 3)}"
            for shard_id in await self._concerned(tenant_id, crm_ids):
                todo.setdefault(
                    (tenant_id, shard_id),
                    RelinkRequest(tenant_id=tenant_id, shard_id=shard_id, reason=reason),
                )
        return list(todo.values())

    async def evaluate(self, request: RelinkRequest) -> list[RelinkRequest]:
        """Evaluate one activity; the evaluations that follow from it: the messages of its
        thread whose last look at it is out of date (they inherit its links).

        Decided from what is stored, not from whether this evaluation changed anything, so
        a replay after a crash between the write and the follow-up requests asks again."""
        LINK_EVALUATIONS.labels(_trigger(request.reason)).inc()
        _, shard, thread = await self._link(request.tenant_id, request.shard_id)
        reason = f"{_THREAD_REASON}{request.shard_id}"
        return [
            RelinkRequest(tenant_id=request.tenant_id, shard_id=follower, reason=reason)
            for follower in await self._followers(
                request.tenant_id, request.shard_id, shard, thread
            )
        ]

    async def process(self, events: Sequence[ShardEvent]) -> int:
        """Everything these shard events ask for, here and now, cascades included; how many
        evaluations ran. (The agent spreads the same work over the activities' partitions:
        `requested`, then `evaluate` each where it belongs.)"""
        return await self._run(await self.requested(events))

    async def relink(self, tenant_id: str, shard_id: str) -> int:
        """Re-evaluate one activity and, after it, the later messages of its thread."""
        return await self._run([RelinkRequest(tenant_id=tenant_id, shard_id=shard_id)])

    async def _run(self, requests: list[RelinkRequest]) -> int:
        todo = {(r.tenant_id, r.shard_id): r for r in requests}
        done = 0
        while todo and done < self._cascade_limit:
            key = next(iter(todo))
            request = todo.pop(key)
            done += 1
            for follow_up in await self.evaluate(request):
                todo[(follow_up.tenant_id, follow_up.shard_id)] = follow_up
        if todo:
            logger.warning("linking cascade stopped after %d evaluations", self._cascade_limit)
        return done

    async def link(self, tenant_id: str, shard_id: str) -> bool:
        """Evaluate one activity and write links, suggestions and their events; True when
        its links changed."""
        changed, _, _ = await self._link(tenant_id, shard_id)
        return changed

    async def _link(
        self, tenant_id: str, shard_id: str
    ) -> tuple[bool, Shard | None, _Thread | None]:
        """`link`; the activity as stored after it, and its thread when it read it
        (linking writes only the activity: `_followers` reuses both)."""
        key = (tenant_id, shard_id)
        if key in self._unread:
            await self._read_ahead(key)
        shard = self._prefetched.pop(key, None)
        if shard is None:
            shard = await self._store.get(tenant_id, shard_id)
        if shard is None:
            return False, None, None
        tenant = self._tenants.of(tenant_id)
        ahead = self._activities.pop(key, None)
        if ahead is not None and ahead[0] is shard:
            activity, keys = ahead[1], ahead[2]
        else:
            activity, keys = _as_activity(shard, tenant)
        now = datetime.now(UTC)
        decision = Decision()
        looked_at: dict[str, str] = {}
        thread: _Thread | None = None
        if activity is not None:
            thread = await self._thread(shard)
            # the earlier messages with links: those without pass nothing on (below)
            earlier = thread.linked_before(activity_order(shard), shard.id)
            context = await self._context(shard, keys, tenant_id, earlier)
            found = candidates(activity, context, tenant)
            decision = decide(activity, found, tenant, context.decided)
            looked_at = {
                s.id: ""
                for group in (context.contacts, context.accounts, context.opportunities,
                              context.users, context.referenced, context.ancestors)
                for s in group
            }  # fmt: skip
            # the earlier messages it inherits from; one that passes nothing on is not
            # recorded (`_followers` asks every later message that inherits less when it
            # gains links), so a thread of unlinked messages writes no O(n²) records
            looked_at.update(
                (s.id, seen) for s in earlier if (seen := inherited(s)) != _INHERITS_NOTHING
            )
            # a parent not in the store yet: its arrival changes the hierarchy read here
            for account in (*context.accounts, *context.ancestors):
                parent = account.structured_data.get("parentId")
                if isinstance(parent, str) and parent:
                    looked_at.setdefault(parent, "")
        # What it looked at: a later change of any of these re-evaluates it, even a change
        # that makes the record no longer match (a contact's old address, an account's
        # old domain, a thread message that moved later or to another thread), which no
        # look-up by the new values would find.
        # A deleted or cancelled activity keeps no automatic link and no pending suggestion.
        automatic = [_link(c, "auto") for c in decision.links]
        updated, new, removed = relinked(shard, automatic)
        suggestions = []
        for suggestion in decision.suggestions:
            assert activity is not None  # suggestions come from an activity's candidates
            stored = self._suggestion(shard, activity, suggestion.candidate, now)
            stored.alternatives = [_candidate_doc(a) for a in suggestion.alternatives]
            stored.reason = suggestion.reason
            suggestions.append(stored)
        written = await self._store.write_linking(
            LinkingWrite(
                tenant_id=tenant_id,
                shard_id=shard_id,
                looked_at=looked_at,
                relinked=updated,
                suggestions=suggestions,
                keep=frozenset(s.candidate.target_shard_id for s in decision.suggestions),
                at=now,
                read=shard,
            )
        )
        events = link_change_events(tenant_id, shard_id, new, removed, now)
        for raised in written.raised:
            events.append(
                _event("link.suggested", tenant_id, shard_id, raised.target_shard_id,
                       raised.target_shard_type, raised.confidence, raised.method,
                       "pending_review", now)
            )  # fmt: skip
        for gone in written.withdrawn:
            events.append(
                _event("link.withdrawn", tenant_id, shard_id, gone.target_shard_id,
                       gone.target_shard_type, gone.confidence, gone.method, "withdrawn", now)
            )  # fmt: skip
        await self._writer.link_events(events)
        return bool(new or removed), written.shard or shard, thread

    async def _context(
        self, shard: Shard, keys: LookupKeys, tenant_id: str, earlier: list[ShardView]
    ) -> LinkContext:
        crm = self._crm
        find = crm.find
        referenced = [
            found
            for shard_id in sorted(keys.references)
            if (found := await crm.get(tenant_id, shard_id)) is not None
        ]
        contacts = await find(tenant_id, "Contact", "email", keys.emails)
        accounts = {a.id: a for a in await find(tenant_id, "Account", "domain", keys.domains)}
        for contact in contacts:
            account_id = contact.structured_data.get("accountId")
            if isinstance(account_id, str) and account_id not in accounts:
                account = await crm.get(tenant_id, account_id)
                if account is not None:
                    accounts[account.id] = account
        opportunities = await find(tenant_id, "Opportunity", "accountId", accounts)
        ancestors = await self._ancestors(tenant_id, accounts)
        users = await find(tenant_id, "User", "email", keys.internal_emails)
        return LinkContext(
            contacts=contacts,
            accounts=list(accounts.values()),
            opportunities=opportunities,
            users=users,
            referenced=referenced,
            thread_links=[k for s in earlier for k in s.links if k.status in ("auto", "approved")],
            decided=await self._store.decisions_for(tenant_id, shard.id),
            ancestors=ancestors,
        )

    async def _ancestors(self, tenant_id: str, accounts: dict[str, Shard]) -> list[Shard]:
        """The parents, grandparents ... (`parentId`) of the accounts, not among them."""
        seen = set(accounts)
        found: list[Shard] = []
        todo = [a.structured_data.get("parentId") for a in accounts.values()]
        while todo and len(found) < _MAX_ANCESTORS:
            parent = todo.pop()
            if not isinstance(parent, str) or not parent or parent in seen:
                continue
            seen.add(parent)
            shard = await self._crm.get(tenant_id, parent)
            if shard is not None and shard.shard_type == "Account":
                found.append(shard)
                todo.append(shard.structured_data.get("parentId"))
        return found

    async def _thread(self, shard: Shard) -> _Thread:
        """The shard's thread (Email and Message; the shard among them once stored), as
        much of it as linking reads: times and links (`ShardStore.find_views`), in thread
        order (`activity_order`), kept while the store hands out the same views.

        An email's thread is of emails and a message's of messages: thread ids carry their
        integration (and a chat thread its channel), so no email shares one with a chat
        message, and reading the other type's was two statements an evaluation that found
        nothing. Other types with a thread id read both, as before."""
        thread_id = shard.structured_data.get("threadId")
        if not isinstance(thread_id, str | int) or not str(thread_id).strip():
            return _NO_THREAD
        found: list[ShardView] = []
        own = _THREADED.get(shard.shard_type)
        types = {shard.shard_type: own} if own is not None else _THREADED
        for shard_type, fields in types.items():
            found += await self._store.find_views(
                shard.tenant_id, shard_type, "threadId", [str(thread_id).strip()], fields
            )
        # The store hands out the views of a thread it has not seen change as the same
        # objects, and a list compares its items by identity first: the same thread as
        # last time costs one pass in C, not the ordering again.
        key = (shard.tenant_id, str(thread_id).strip())
        kept = self._threads.get(key)
        if kept is None or kept[0] != found:
            kept = self._threads.keep(key, (found, _Thread.of(found)))
        return kept[1]

    async def _followers(
        self, tenant_id: str, shard_id: str, shard: Shard | None, thread: _Thread | None
    ) -> list[str]:
        """Messages whose view of this one is out of date: later ones of its thread that did
        not see its links as they are now, and those that read it but should not have (it
        moved later, or to another thread, or is gone). `shard`: the activity as the
        evaluation left it in the store (None: not there); `thread`: its thread as the
        evaluation just read it (None: not read)."""
        readers = await self._store.link_readers(tenant_id, shard_id)
        stale: list[Shard | ShardView] = []
        left: set[str] = set(readers)  # readers not later in its thread
        if shard is not None:
            at = activity_order(shard)
            whole = thread if thread is not None else await self._thread(shard)
            now = inherited(shard)
            if _thread_map(shard.links):
                others = whole.others(shard.id)
                covered = _covered_in(shard, at, others)
                for order, s in others:
                    if order > at:
                        left.discard(s.id)
                        if readers.get(s.id) != now and (s.id in readers or s.id not in covered):
                            stale.append(s)
            else:
                # It passes nothing on: every later message is covered (`_covered_in`),
                # so only those that read it can be out of date.
                for reader, seen in readers.items():
                    if reader != shard.id and whole.is_after(reader, at):
                        left.discard(reader)
                        if seen != now:
                            stale.append(whole.ordered[whole.places[reader]][1])
        gone = [await self._store.get(tenant_id, i) for i in sorted(left)]
        stale += [s for s in gone if s is not None]
        return [s.id for s in sorted(stale, key=activity_order)]

    async def _activity_types(self, tenant_id: str) -> set[str]:
        """The activity types the tenant has shards of. A type seen once is kept (after its
        last shard is gone it only costs look-ups that find nothing); the others are asked
        for each time, as their first shard may just have been written. No race: an
        activity written after the question is evaluated after it, against CRM records
        stored before it (those whose changes ask here)."""
        seen = self._activity_types_seen.setdefault(tenant_id, set())
        if missing := ACTIVITY_TYPES - seen:
            seen |= await self._store.shard_types_present(tenant_id, missing)
        return seen

    async def _concerned(self, tenant_id: str, crm_ids: Sequence[str]) -> list[str]:
        """Every activity new or changed contacts, users, accounts or opportunities of one
        tenant may concern, however old: those whose last linking looked at them (or at
        their accounts), and those their current addresses, domains, contacts or ids match
        in the look-up index. One look-up per key and activity type for all of them (a
        batch's CRM records together, not one record at a time). Only the activity types
        the tenant has: a CRM backfill before any mail (a new customer connects its CRM
        first) concerns nothing, and reads nothing but whether there is mail yet."""
        present = await self._activity_types(tenant_id)
        if not present:
            return []
        shards = (await self._store.get_views(tenant_id, crm_ids, _CONCERN_FIELDS)).values()
        looked_at: set[str] = set()
        queries: dict[str, set[str]] = {"reference": set(), "domain": set(), "participant": set()}
        accounts: list[str] = []
        for shard in shards:
            data = shard.structured_data
            looked_at.add(shard.id)
            queries["reference"].add(shard.id)
            if shard.shard_type == "Account":
                queries["domain"].update(_strings(data.get("domain"), data.get("domains")))
                accounts.append(shard.id)
            elif shard.shard_type == "Opportunity":
                # activities that saw its account weigh the account's opportunities
                account_id = data.get("accountId")
                if isinstance(account_id, str) and account_id:
                    looked_at.add(account_id)
            else:
                queries["participant"].update(_strings(data.get("email"), data.get("emails")))
        if accounts:
            # mail of their contacts: an account is linked through them (account_contact)
            contacts = await self._store.find_views(
                tenant_id, "Contact", "accountId", accounts, _ADDRESS_FIELDS
            )
            for contact in contacts:
                c = contact.structured_data
                queries["participant"].update(_strings(c.get("email"), c.get("emails")))
        ids = set(await self._store.link_context_sources(tenant_id, looked_at))
        found: dict[str, ShardView] = {}
        for key, values in queries.items():
            if not values:
                continue
            for shard_type in sorted(present):
                for activity in await self._store.find_views(
                    tenant_id, shard_type, key, values, _TIME_FIELDS
                ):
                    found[activity.id] = activity
        found.update(await self._store.get_views(tenant_id, sorted(ids - set(found)), _TIME_FIELDS))
        # in time order: a thread's earlier messages settle before the replies that inherit
        return [s.id for s in sorted(found.values(), key=activity_order)]

    def _suggestion(
        self, shard: Shard, activity: Activity, candidate: Candidate, now: datetime
    ) -> SuggestedLink:
        return SuggestedLink(
            id=suggestion_id(shard.tenant_id, shard.id, candidate.target_shard_id),
            tenant_id=shard.tenant_id,
            source_shard_id=shard.id,
            source_shard_type=shard.shard_type,
            raised_by="linking",
            target_shard_id=candidate.target_shard_id,
            target_shard_type=candidate.target_shard_type,
            confidence=candidate.confidence,
            method=candidate.method,
            evidence=[_evidence_doc(e) for e in candidate.evidence],
            source_summary={
                "subject": activity.subject,
                "participants": [p.email for p in activity.participants],
                "occurredAt": activity.occurred_at.isoformat() if activity.occurred_at else None,
            },
            created_at=now,
        )


def _link(candidate: Candidate, status: str) -> Link:
    return Link.model_validate(
        {
            "targetShardId": candidate.target_shard_id,
            "targetShardType": candidate.target_shard_type,
            "confidence": candidate.confidence,
            "method": candidate.method,
            "status": status,
            "evidence": [_evidence_doc(e) for e in candidate.evidence],
        }
    )


def _evidence_doc(evidence: Any) -> dict[str, Any]:
    return {
        "rule": evidence.rule,
        "field": evidence.field,
        "value": evidence.value,
        "detail": evidence.detail,
    }


def _candidate_doc(candidate: Candidate) -> dict[str, Any]:
    return {
        "targetShardId": candidate.target_shard_id,
        "targetShardType": candidate.target_shard_type,
        "confidence": candidate.confidence,
        "method": candidate.method,
        "evidence": [_evidence_doc(e) for e in candidate.evidence],
    }


def link_change_events(
    tenant_id: str, shard_id: str, new: Iterable[Link], removed: Iterable[Link], at: datetime
) -> list[LinkEvent]:
    """`link.created` for each new automatic link; `link.rejected` (status `removed`) for
    each automatic link a re-evaluation took away, so consumers (the ML fields) drop it."""
    created = [
        _event("link.created", tenant_id, shard_id, link.target_shard_id,
               link.target_shard_type, link.confidence, link.method, "auto", at)
        for link in new if link.status == "auto"
    ]  # fmt: skip
    gone = [
        _event("link.rejected", tenant_id, shard_id, link.target_shard_id,
               link.target_shard_type, link.confidence, link.method, "removed", at)
        for link in removed
    ]  # fmt: skip
    return created + gone


def _event(
    kind: Any,
    tenant_id: str,
    shard_id: str,
    target_id: str,
    target_type: str,
    confidence: float,
    method: str,
    status: str,
    at: datetime,
) -> LinkEvent:
    return LinkEvent(
        type=kind,
        event_id=f"{shard_id}:{target_id}:{status}",
        tenant_id=tenant_id,
        shard_id=shard_id,
        target_shard_id=target_id,
        target_shard_type=target_type,
        confidence=confidence,
        method=method,
        status=status,
        occurred_at=at,
    )


def inherited(shard: Shard | ShardView) -> str:
    """A digest of what later messages of its thread inherit from it: its links."""
    return _inheritance(shard.links)


def _inheritance(links: Sequence[Link]) -> str:
    if not links:
        return _INHERITS_NOTHING
    kept = sorted(
        f"{k.target_shard_type}:{k.target_shard_id}:{k.status}"
        for k in links
        if k.status in ("auto", "approved")
    )
    return hashlib.sha1("\n".join(kept).encode(), usedforsecurity=False).hexdigest()[:16]


#: the reason of a re-evaluation an earlier message of the thread asks for
_THREAD_REASON = "thread of "
_CRM_REASON = "CRM records changed: "


def _trigger(reason: str | None) -> str:
    """What asked for an evaluation, for `LINK_EVALUATIONS`."""
    if not reason:
        return "other"
    if reason.startswith(_THREAD_REASON):
        return "thread"
    if reason.startswith(_CRM_REASON):
        return "crm"
    return "activity" if reason.startswith("shard.") else "other"


def _thread_map(links: Iterable[Link]) -> dict[tuple[str, str], bool]:
    """What later messages inherit from these links, as the rules read it: each target
    (type, id) of an automatic or approved link, and whether one of them is approved."""
    found: dict[tuple[str, str], bool] = {}
    for k in links:
        if k.status in ("auto", "approved"):
            key = (k.target_shard_type, k.target_shard_id)
            found[key] = found.get(key, False) or k.status == "approved"
    return found


def _covered_after(shard: Shard, others: Sequence[ShardView]) -> set[str]:
    """The later messages of `shard`'s thread that inherit nothing new from it: the thread's
    other messages before each of them already pass on every target of `shard`'s links,
    approved where it is approved (`others`: the thread without `shard`).

    The rules read a thread only as the targets its earlier messages link and whether one
    of those links is approved (`linking.rules`, `_unique_links`), so a message that never
    saw `shard` decides the same with it as without it. Such a message need not be
    re-evaluated when `shard` arrives; should `shard`'s links change later, the message
    is asked again then (it holds no record of having read `shard`).
    """
    return _covered_in(shard, activity_order(shard), _ordered(others))


def _covered_in(shard: Shard, at: Order, others: Sequence[Ordered]) -> set[str]:
    """`_covered_after` of a thread in order (`_ordered`), `shard` at `at`."""
    mine = _thread_map(shard.links)
    before: dict[tuple[str, str], bool] = {}
    covered: set[str] = set()
    for order, other in others:
        if order > at and all(
            key in before and (before[key] or not approved) for key, approved in mine.items()
        ):
            covered.add(other.id)
        for key, approved in _thread_map(other.links).items():
            before[key] = before.get(key, False) or approved
    return covered


def activity_order(shard: Shard | ShardView) -> Order:
    """The total order of a thread: time (unknown first), then id (a tie is never mutual)."""
    return (occurred_at(shard) or datetime.min.replace(tzinfo=UTC), shard.id)


def _ordered(shards: Iterable[ShardView]) -> list[Ordered]:
    """The shards with their `activity_order`, in that order."""
    return sorted(((activity_order(s), s) for s in shards), key=itemgetter(0))


#: the thread of a message without a thread id
_NO_THREAD = _Thread([], [], {}, [])
#: the look-ups of a shard that is not an activity (nothing to link)
_NO_KEYS = LookupKeys(frozenset(), frozenset(), frozenset(), frozenset())


def _as_activity(shard: Shard, tenant: TenantConfig) -> tuple[Activity | None, LookupKeys]:
    """The shard as an activity (None: nothing to link) and the look-ups it needs."""
    activity = activity_of(shard, tenant)
    return activity, lookup_keys(activity, tenant) if activity is not None else _NO_KEYS


def _strings(*values: Any) -> list[str]:
    items = [i for v in values for i in (v if isinstance(v, list) else [v])]
    return [i.strip().lower() for i in items if isinstance(i, str) and i.strip()]


def _only_ml_fields(event: ShardEvent) -> bool:
    """A write-back of ML fields: nothing linking reads has changed."""
    return bool(event.changed_fields) and set(event.changed_fields) <= {"mlFields"}
