"""The embedded shard store: one SQLite database file, shared safely by processes.

WAL journal (readers never block the writer), `BEGIN IMMEDIATE` for every write
(one writer at a time across processes, waiting up to `busy_timeout`), and each
batch merged in one transaction, so a killed process leaves nothing half-written.
Calls run on one dedicated thread per store, off the event loop.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from processors.exceptions import ConcurrencyError, ShardTypeMissingError, StoreError
from shards.model import Shard, ShardDraft, WriteOutcome, merge
from shards.store import FIELD_PATH, Page, decode_cursor, encode_cursor
from shards.types import ShardTypeDefinition

__all__ = ["SqliteShardStore"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS shards (
    tenant_id  TEXT NOT NULL,
    id         TEXT NOT NULL,
    shard_type TEXT NOT NULL,
    etag       TEXT NOT NULL,
    doc        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS shards_by_type ON shards (tenant_id, shard_type, id);
CREATE TABLE IF NOT EXISTS shard_types (
    id             TEXT PRIMARY KEY,
    schema_version INTEGER NOT NULL,
    doc            TEXT NOT NULL
);
"""

_UPSERT = (
    "INSERT INTO shards (tenant_id, id, shard_type, etag, doc) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (tenant_id, id) DO UPDATE SET "
    "shard_type = excluded.shard_type, etag = excluded.etag, doc = excluded.doc"
)


class SqliteShardStore:
    """A `ShardStore` in one SQLite file."""

    def __init__(self, path: Path, *, busy_timeout: float = 30.0) -> None:
        self._path = path
        self._busy_timeout = busy_timeout
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    @classmethod
    def from_url(cls, url: str) -> SqliteShardStore:
        """`sqlite:///absolute/path.db` or `sqlite://relative/path.db`."""
        return cls(Path(url.removeprefix("sqlite://")))

    async def __aenter__(self) -> SqliteShardStore:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="sqlite-store")
        await self._run(self._open)

    async def stop(self) -> None:
        if self._executor is None:
            return
        await self._run(self._close)
        self._executor.shutdown(wait=True)
        self._executor = None

    async def ping(self) -> None:
        await self._run(lambda: self._db().execute("SELECT 1").fetchone())

    async def get(self, tenant_id: str, shard_id: str) -> Shard | None:
        return await self._run(lambda: self._get(tenant_id, shard_id))

    async def upsert_many(self, drafts: Sequence[ShardDraft]) -> list[WriteOutcome]:
        if not drafts:
            return []
        return await self._run(lambda: self._upsert_many(drafts))

    async def replace(self, shard: Shard, *, if_match: str) -> Shard:
        return await self._run(lambda: self._replace(shard, if_match))

    async def query(
        self,
        tenant_id: str,
        *,
        shard_type: str | None = None,
        where: Mapping[str, Any] | None = None,
        limit: int = 100,
        continuation: str | None = None,
    ) -> Page:
        clauses: list[str] = ["tenant_id = ?"]
        params: list[Any] = [tenant_id]
        if shard_type is not None:
            clauses.append("shard_type = ?")
            params.append(shard_type)
        for path, value in (where or {}).items():
            if not FIELD_PATH.match(path):
                message = f"not a field path: {path!r}"
                raise ValueError(message)
            clauses.append("json_extract(doc, ?) = ?")
            params.extend([f"$.{path}", value])
        if continuation:
            clauses.append("id > ?")
            params.append(decode_cursor(continuation))
        sql = (
            f"SELECT doc, etag FROM shards WHERE {' AND '.join(clauses)} "  # noqa: S608  # fixed clauses, values bound
            "ORDER BY id LIMIT ?"
        )
        params.append(limit + 1)
        rows = await self._run(lambda: self._db().execute(sql, params).fetchall())
        items = [_shard(doc, etag) for doc, etag in rows[:limit]]
        more = len(rows) > limit
        return Page(items, encode_cursor(items[-1].id) if more and items else None)

    async def get_shard_type(self, type_id: str) -> ShardTypeDefinition | None:
        row = await self._run(
            lambda: (
                self._db()
                .execute("SELECT doc FROM shard_types WHERE id = ?", (type_id,))
                .fetchone()
            )
        )
        return ShardTypeDefinition.from_doc(json.loads(row[0])) if row else None

    async def put_shard_type(self, definition: ShardTypeDefinition) -> None:
        def write() -> None:
            with self._write() as db:
                db.execute(
                    "INSERT INTO shard_types (id, schema_version, doc) VALUES (?, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET schema_version = excluded.schema_version, "
                    "doc = excluded.doc",
                    (definition.id, definition.schema_version, json.dumps(definition.to_doc())),
                )

        await self._run(write)

    async def known_shard_types(self) -> set[str]:
        """Ids of the stored shard types."""
        rows = await self._run(lambda: self._db().execute("SELECT id FROM shard_types").fetchall())
        return {r[0] for r in rows}

    # --- on the store's thread -------------------------------------------------

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            message = "the store is not started"
            raise StoreError(message)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
        except sqlite3.Error as e:
            message = f"sqlite store {self._path}: {e}"
            raise StoreError(message) from e

    def _open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self._path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        self._conn = conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            message = "the store is not open"
            raise StoreError(message)
        return self._conn

    def _write(self) -> _Transaction:
        return _Transaction(self._db())

    def _get(self, tenant_id: str, shard_id: str) -> Shard | None:
        row = (
            self._db()
            .execute(
                "SELECT doc, etag FROM shards WHERE tenant_id = ? AND id = ?", (tenant_id, shard_id)
            )
            .fetchone()
        )
        return _shard(*row) if row else None

    def _upsert_many(self, drafts: Sequence[ShardDraft]) -> list[WriteOutcome]:
        outcomes = []
        now = datetime.now(UTC)
        with self._write() as db:
            known = {r[0] for r in db.execute("SELECT id FROM shard_types")}
            missing = {d.shard_type for d in drafts} - known
            if missing:
                message = f"shard types not in the store: {sorted(missing)}"
                raise ShardTypeMissingError(message)
            current: dict[tuple[str, str], Shard | None] = {}
            for draft in drafts:
                key = (draft.tenant_id, draft.id)
                if key not in current:
                    current[key] = self._get(*key)
                outcome = merge(current[key], draft, now)
                if outcome.changed:
                    etag = uuid.uuid4().hex
                    shard = outcome.shard.model_copy(update={"etag": etag})
                    db.execute(
                        _UPSERT, (shard.tenant_id, shard.id, shard.shard_type, etag, _doc(shard))
                    )
                    outcome = WriteOutcome(outcome.kind, shard, outcome.changed_fields)
                current[key] = outcome.shard
                outcomes.append(outcome)
        return outcomes

    def _replace(self, shard: Shard, if_match: str) -> Shard:
        etag = uuid.uuid4().hex
        stored = shard.model_copy(update={"etag": etag})
        with self._write() as db:
            cursor = db.execute(
                "UPDATE shards SET shard_type = ?, etag = ?, doc = ? "
                "WHERE tenant_id = ? AND id = ? AND etag = ?",
                (shard.shard_type, etag, _doc(stored), shard.tenant_id, shard.id, if_match),
            )
            if cursor.rowcount != 1:
                message = f"shard {shard.id} changed since it was read (etag {if_match})"
                raise ConcurrencyError(message)
        return stored


class _Transaction:
    """`BEGIN IMMEDIATE` ... `COMMIT`, or `ROLLBACK` on any error."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self._conn.execute("BEGIN IMMEDIATE")
        return self._conn

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._conn.execute("ROLLBACK" if exc_type else "COMMIT")


def _doc(shard: Shard) -> str:
    doc = shard.to_doc()
    doc.pop("_etag", None)
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def _shard(doc: str, etag: str) -> Shard:
    shard = Shard.model_validate_json(doc)
    return shard.model_copy(update={"etag": etag})
