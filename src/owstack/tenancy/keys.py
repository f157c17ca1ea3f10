"""API keys: create, list, revoke, and authenticate on the hot path.

    store = KeyStore("sqlite:///owstack.db")          # or postgresql://...; runs the migrations
    key, record = store.create("acme-eu", layers=["coding"], expires="30d")   # `key` is shown once
    record = store.authenticate(key)                   # or `await store.authenticate_async(key)`
    store.revoke(record.key_id)

The key format and why a plain SHA-256 suffices: keyformat.py. The cache in front of the table and the
revocation delay (about one second): keycache.py. While the database cannot be reached (`StoreHealth`),
requests do not wait for it: each waits at most `lookup_timeout_s`, one probe per backoff interval asks
it, revision reads run in the background, and keys read within the outage grace keep working; a key that
cannot be checked is refused with 503 `key_store_unavailable`. The store's calls run on two threads of its
own, so a hung database cannot take the event loop's default executor. `authenticate` raises
`AuthenticationFailed` whose message says which of these it is, never more:

    malformed   not `ows-<12 hex>-<43 url-safe characters>` (the database is not asked)
    invalid     no key with that id, or the secret does not match (deliberately one answer)
    revoked     the secret matches a revoked key
    expired     the secret matches a key past its expiry

Revoked and expired are only reported to a caller who holds the right secret.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import exc

from owstack.errors import AuthenticationFailed, ServiceUnavailable
from owstack.storage.health import StoreHealth
from owstack.tenancy import keyformat
from owstack.tenancy.keycache import KeyCache
from owstack.tenancy.keyrecords import KeyRecord, Stored, new_record, row_values, stored
from owstack.tenancy.tables import api_key_revision, api_keys

if TYPE_CHECKING:
    from owstack.config.load import Config

log = logging.getLogger("owstack.tenancy")

INVALID = "invalid API key: unknown key id or wrong secret"
_DUMMY_DIGEST = keyformat.hash_secret("owstack-no-such-key")
#: verified keys remembered (`KeyStore._accepted`; emptied when full)
ACCEPTED_CACHE = 4096


class KeyNotFound(LookupError):
    """`revoke` or `get` of a key id that has no row."""


class KeyStore:
    """Keys in the `api_keys` table (SQLite or PostgreSQL), with an in-process cache for `authenticate`."""

    def __init__(
        self,
        url: str,
        *,
        migrate: bool = True,
        require_store: bool = True,
        cache_ttl_s: float = 60.0,
        negative_ttl_s: float = 30.0,
        revision_check_s: float = 1.0,
        max_cached: int = 10_000,
        outage_grace_s: float = 3600.0,
        lookup_timeout_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """`clock` (monotonic seconds: the cache's lifetimes) and `wall` (epoch seconds: key expiry) are
        parameters so that tests can move time instead of waiting for it.

        `require_store=False` (the gateway, `for_gateway`): a PostgreSQL server that cannot be reached is not
        an error here; the schema is migrated by the first call that reaches it. With True (the CLI) the
        driver's error is raised. A SQLite file that cannot be opened is a `ConfigError` either way."""
        from owstack import storage
        from owstack.storage.db import safe_url

        self.url = url
        self._engine = storage.engine(url)
        self.clock = clock
        self.health = StoreHealth("keys", safe_url(url), clock=clock)
        self._ready = not migrate
        if migrate:
            self._migrate_at_start(require_store)
        self._cache: KeyCache[Stored] = KeyCache(clock=clock)
        self.configure(
            cache_ttl_s=cache_ttl_s,
            negative_ttl_s=negative_ttl_s,
            revision_check_s=revision_check_s,
            max_cached=max_cached,
            outage_grace_s=outage_grace_s,
            lookup_timeout_s=lookup_timeout_s,
        )
        self._wall = wall
        self._inflight: dict[str, asyncio.Future[Stored | None]] = {}
        self._refreshing: asyncio.Future[None] | None = None
        #: a `watch` task reads the revision: requests need not claim the reads
        self._watched = False
        #: the revision has been read once: until then a request waits for that read (`_first_revision`)
        self._revision_known = False
        self._executor: ThreadPoolExecutor | None = None

    def configure(
        self,
        *,
        cache_ttl_s: float,
        negative_ttl_s: float,
        revision_check_s: float,
        max_cached: int,
        outage_grace_s: float,
        lookup_timeout_s: float,
    ) -> None:
        """Set the cache's lifetimes and the outage behaviour (`keys:`, `KeysSection`); empties the cache."""
        self.lookup_timeout_s = lookup_timeout_s
        #: presented key -> the cache entry it was verified against: while the cache holds that same entry
        #: (not refreshed, revoked or expired since), the key is not parsed, hashed and compared again
        self._accepted: dict[str, Stored] = {}
        self._cache = KeyCache(
            ttl_s=cache_ttl_s,
            negative_ttl_s=negative_ttl_s,
            revision_check_s=revision_check_s,
            max_entries=max_cached,
            grace_s=outage_grace_s,
            clock=self.clock,
        )

    @classmethod
    def for_gateway(cls, config: Config) -> KeyStore:
        """The gateway's store: `storage.url`, the `keys:` section's cache and outage settings, and a start
        that does not need the database to be reachable."""
        return cls(config.file.storage.url, require_store=False, **config.file.keys.model_dump())

    def _migrate_at_start(self, require_store: bool) -> None:
        from owstack import storage
        from owstack.errors import ConfigError
        from owstack.storage import error_reason, safe_url

        try:
            storage.migrate(self.url)
            self._ready = True
        except exc.SQLAlchemyError as error:
            if require_store and storage.is_outage(error) and self._engine.dialect.name != "sqlite":
                raise
            if self._engine.dialect.name == "sqlite" or not storage.is_outage(error):
                raise ConfigError(
                    f"storage.url: cannot use the key store at {safe_url(self.url)}: {error_reason(error)}"
                ) from error
            self.health.failed(error)  # served from nothing until it answers: keys are refused with 503

    def _ensure_schema(self) -> None:
        if not self._ready:
            from owstack import storage

            storage.migrate(self.url)
            self._ready = True

    def __repr__(self) -> str:
        from owstack.storage.db import safe_url

        return f"KeyStore({safe_url(self.url)!r})"

    # -- administration (CLI, admin API) ------------------------------------------------------------

    def create(
        self,
        tenant: str,
        layers: Iterable[str] | None = None,
        expires: datetime | str | None = None,
        *,
        label: str | None = None,
        admin: bool = False,
    ) -> tuple[str, KeyRecord]:
        """A new key for `tenant`: (the full key, to show once; its record). ValueError for bad input."""
        record = dataclasses.replace(new_record(tenant, layers, expires, label), admin=admin)
        for _ in range(3):  # a 48-bit key id collides rarely; try another
            key, key_id, digest = keyformat.new_key()
            record = dataclasses.replace(record, key_id=key_id)
            try:
                with self._write() as conn:
                    conn.execute(api_keys.insert().values(**row_values(record, digest)))
                    _bump_revision(conn)
            except exc.IntegrityError:
                continue
            self._cache.clear()
            return key, record
        raise RuntimeError("could not find a free key id in 3 tries")

    def revoke(self, key_id: str) -> KeyRecord:
        """Revoke a key (idempotent: an already revoked key keeps its first revocation time)."""
        key_id = keyformat.check_key_id(key_id)
        now = datetime.now(UTC)
        with self._write() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).first()
            if row is None:
                raise KeyNotFound(f"no key with id {key_id} (see `owstack keys list`)")
            if row.revoked_at is None:
                conn.execute(api_keys.update().where(api_keys.c.key_id == key_id).values(revoked_at=now))
                _bump_revision(conn)
        self._cache.clear()
        record = stored(row).record
        if record.revoked_at is None:
            record = dataclasses.replace(record, revoked_at=now)
        return record

    def get(self, key_id: str) -> KeyRecord:
        key_id = keyformat.check_key_id(key_id)
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).first()
        if row is None:
            raise KeyNotFound(f"no key with id {key_id} (see `owstack keys list`)")
        return stored(row).record

    def list(self, tenant: str | None = None) -> builtins.list[KeyRecord]:
        """Every key (revoked and expired ones too), oldest first, optionally of one tenant."""
        query = sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.key_id)
        if tenant is not None:
            query = query.where(api_keys.c.tenant == tenant)
        with self._engine.connect() as conn:
            return [stored(row).record for row in conn.execute(query)]

    # -- the hot path --------------------------------------------------------------------------------

    def authenticate(self, presented: str) -> KeyRecord:
        """The record of a valid key, or `AuthenticationFailed`. Blocking: use `authenticate_async` in
        the event loop (it queries only on a cache miss, in a worker thread)."""
        key = keyformat.parse(presented)
        if self._cache.claim_revision_check():
            self._refresh_revision()
        hit = self._cache.get(key.key_id)
        stored = hit.value if hit is not None else self._load(key.key_id)
        return _verify(key, stored, self._wall())

    async def authenticate_async(self, presented: str) -> KeyRecord:
        """`authenticate` for the event loop: a cache hit costs no I/O; a miss waits at most
        `lookup_timeout_s` for the store; revision reads never hold a request up."""
        if not self._watched and self._cache.claim_revision_check():  # the gateway's watch task reads it
            self._refresh_in_background()
        if not self._revision_known:
            await self._first_revision()
        known = self._accepted.get(presented)
        if known is not None:  # this exact key was verified against this very entry of the cache
            hit = self._cache.get(known.record.key_id)
            if hit is not None and hit.value is known and (known.expires_ts is None or known.expires_ts > self._wall()):
                return known.record
        key = keyformat.parse(presented)
        hit = self._cache.get(key.key_id)
        stored = hit.value if hit is not None else await self._lookup(key.key_id)
        record = _verify(key, stored, self._wall())
        if hit is not None and stored is not None:
            accepted = self._accepted
            if len(accepted) >= ACCEPTED_CACHE:
                accepted.clear()
            accepted[presented] = stored
        return record

    async def _first_revision(self) -> None:
        """Until the store's revision has been read once, a request waits for that read (at most
        `lookup_timeout_s`, as for a lookup) before it reads a key: a row read before the first revision read
        may predate a revocation that this read already counts, and no later change of the revision would then
        drop it (the revoked key would be answered from the cache until its TTL ran out)."""
        self._refresh_in_background()
        probe = self._refreshing
        if probe is not None and not probe.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(probe), self.lookup_timeout_s)

    async def watch(self) -> None:
        """Read the revision every `revision_check_s` while the gateway runs, requests or not (the gateway
        runs this as a task): an idle instance learns of a revocation as soon as a busy one, instead of
        answering the first request after a quiet spell from a cache older than the revocation."""
        self._watched = True
        try:
            await self._watch()
        finally:
            self._watched = False

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(min(max(self._cache.due_in(), 0.01), self._cache.revision_check_s))
            if self._cache.claim_revision_check():
                self._refresh_in_background()
            refreshing = self._refreshing
            if refreshing is not None and not refreshing.done():
                with contextlib.suppress(Exception):
                    await asyncio.shield(refreshing)

    def invalidate(self) -> None:
        """Drop the cache now (tests, and an admin API that changed keys through another store)."""
        self._cache.clear()
        self._accepted.clear()

    async def aclose(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    async def _lookup(self, key_id: str) -> Stored | None:
        """The key's row from the store; while it cannot answer, from the outage grace; else 503. While the
        store is down a request does not wait for it, unless it has no cached answer and a probe is on its
        way (then it waits for the probe, at most `lookup_timeout_s`)."""
        if not self.health.up and not self.health.should_try():
            stale = self._cache.stale(key_id)
            if stale is not None:
                return stale
            probe = self._refreshing
            if probe is not None and not probe.done():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(probe), self.lookup_timeout_s)
            if not self.health.up:
                raise _unavailable()
        try:
            return await asyncio.wait_for(self._load_shared(key_id), self.lookup_timeout_s)
        except (exc.SQLAlchemyError, TimeoutError, OSError) as error:
            self.health.failed(error if not isinstance(error, TimeoutError) else "no answer in time")
        stale = self._cache.stale(key_id)
        if stale is not None:
            return stale
        raise _unavailable()

    def _run(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Run a blocking store call on the store's own threads (two: a hung database holds at most those)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(2, thread_name_prefix="owstack-keys")
        return asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _load_shared(self, key_id: str) -> Stored | None:
        """One query per key id however many requests wait for it (a burst with a new or unknown key)."""
        loop = asyncio.get_running_loop()
        future = self._inflight.get(key_id)
        if future is None or future.get_loop() is not loop:
            future = self._run(self._load_checked, key_id)
            self._inflight[key_id] = future
            future.add_done_callback(lambda _f: self._inflight.pop(key_id, None))
        return await asyncio.shield(future)

    def _load_checked(self, key_id: str) -> Stored | None:
        stored = self._query(key_id)
        self.health.succeeded()
        return stored

    def _load(self, key_id: str) -> Stored | None:
        """The synchronous path's load: a store that cannot answer is a 503 (or the outage grace)."""
        try:
            return self._load_checked(key_id)
        except exc.SQLAlchemyError as error:
            self.health.failed(error)
            stale = self._cache.stale(key_id)
            if stale is not None:
                return stale
            raise ServiceUnavailable(
                "the API key store cannot be read; try again shortly", code="key_store_unavailable"
            ) from None

    def _query(self, key_id: str) -> Stored | None:
        generation = self._cache.generation
        self._ensure_schema()
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).first()
        found = None if row is None else stored(row)
        self._cache.put(key_id, found, generation=generation)
        return found

    def _refresh_in_background(self) -> None:
        """Read the revision on the store's threads; at most one read at a time, none while a probe is not due."""
        if self._refreshing is not None and not self._refreshing.done():
            return
        if not self.health.should_try():
            return
        self._refreshing = self._run(self._refresh_revision)

    def _refresh_revision(self) -> None:
        try:
            self._ensure_schema()
            with self._engine.connect() as conn:
                revision = conn.execute(
                    sa.select(api_key_revision.c.revision).where(api_key_revision.c.id == 1)
                ).scalar()
        except exc.SQLAlchemyError as error:
            self.health.failed(error)  # cached keys answer meanwhile (their TTL, then the outage grace)
            return
        self.health.succeeded()
        self._cache.observe_revision(int(revision or 0))
        self._revision_known = True

    def _write(self) -> Any:
        """A write transaction; on SQLite it takes the write lock up front (BEGIN IMMEDIATE)."""
        from owstack.storage.db import SQLITE_BEGIN

        conn = self._engine.connect().execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
        return _Transaction(conn)


class _Transaction:
    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> sa.Connection:
        self._tx = self._conn.begin()
        return self._conn

    def __exit__(self, kind: object, error: object, tb: object) -> None:
        try:
            if error is None:
                self._tx.commit()
            else:
                self._tx.rollback()
        finally:
            self._conn.close()


def _unavailable() -> ServiceUnavailable:
    return ServiceUnavailable(
        "the API key store cannot be reached and this key was not seen recently; try again shortly",
        code="key_store_unavailable",
    )


def _verify(key: keyformat.PresentedKey, stored: Stored | None, now: float) -> KeyRecord:
    digest = stored.digest if stored is not None else _DUMMY_DIGEST  # same work for unknown ids
    if not keyformat.secret_matches(key.secret, digest) or stored is None:
        raise AuthenticationFailed(INVALID)
    record = stored.record
    if record.revoked_at is not None:
        raise AuthenticationFailed(f"API key {record.key_id} has been revoked")
    if stored.expires_ts is not None and stored.expires_ts <= now:
        expired = record.expires_at.isoformat(timespec="seconds") if record.expires_at else "?"
        raise AuthenticationFailed(f"API key {record.key_id} expired at {expired}")
    return record


def _bump_revision(conn: sa.Connection) -> None:
    updated = conn.execute(
        api_key_revision.update().where(api_key_revision.c.id == 1).values(revision=api_key_revision.c.revision + 1)
    )
    if updated.rowcount == 0:
        conn.execute(api_key_revision.insert().values(id=1, revision=1))
