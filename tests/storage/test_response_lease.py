"""The stored responses' background lease (revision 0010), on SQLite and PostgreSQL, with a clock the test
moves: two `ResponseStore`s on one database play two gateway processes (each its own `instance`)."""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

import orjson
import sqlalchemy as sa

from owstack import storage
from owstack.protocols.responses.store import LAPSED, ResponseStore

T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def body(rid: str, status: str, background: bool = True) -> dict[str, Any]:
    return {"id": rid, "object": "response", "created_at": int(T0), "status": status, "background": background}


def row(url: str, rid: str) -> Any:
    with storage.engine(url).connect() as conn:
        return conn.execute(sa.text("SELECT * FROM responses WHERE id = :id"), {"id": rid}).mappings().first()


def test_a_lease_held_renewed_and_lapsed(db_url: str) -> None:
    clock = Clock()
    owner = ResponseStore(db_url, 3600, lease_s=30, clock=clock)
    other = ResponseStore(db_url, 3600, lease_s=30, clock=clock)
    assert owner.instance != other.instance

    async def main() -> None:
        await owner.put("acme", body("resp_1", "queued"), [{"role": "user", "content": "go"}])
        stored = row(db_url, "resp_1")
        assert (stored["owner"], stored["heartbeat_at"], stored["lease_until"]) == (owner.instance, T0, T0 + 30)
        clock.now = T0 + 29
        assert (await other.get("acme", "resp_1")).status == "queued"  # type: ignore[union-attr]
        assert await owner.heartbeat(["resp_1"]) == ([], [], [])  # renewed until T0 + 59
        clock.now = T0 + 58
        assert (await other.get("acme", "resp_1")).status == "queued"  # type: ignore[union-attr]
        clock.now = T0 + 100
        owner.running = {"resp_1"}  # the owner's own task is running: it never reads its row as lapsed
        assert (await owner.get("acme", "resp_1")).status == "queued"  # type: ignore[union-attr]
        lapsed = await other.get("acme", "resp_1")
        assert lapsed is not None and lapsed.status == "failed" and lapsed.body["error"] == LAPSED
        assert lapsed.items == [{"role": "user", "content": "go"}]
        stored = row(db_url, "resp_1")
        assert stored["status"] == "failed" and orjson.loads(zlib.decompress(stored["body"]))["error"] == LAPSED
        assert (await other.get("acme", "resp_1")).status == "failed"  # type: ignore[union-attr]
        # the owner comes back: its outcome is not stored over the failure, and its heartbeat says so
        assert await owner.put("acme", body("resp_1", "completed"), []) is False
        assert await owner.heartbeat(["resp_1"]) == ([], [], ["resp_1"])
        assert row(db_url, "resp_1")["status"] == "failed"

    asyncio.run(main())


def test_a_cancel_or_delete_asked_elsewhere_reaches_the_owner_at_its_heartbeat(db_url: str) -> None:
    clock = Clock()
    owner = ResponseStore(db_url, 3600, lease_s=30, clock=clock)
    other = ResponseStore(db_url, 3600, lease_s=30, clock=clock)

    async def main() -> None:
        for rid in ("resp_c", "resp_d"):
            await owner.put("acme", body(rid, "queued"), [])
        assert await other.request_cancel("acme", "resp_c") is True
        assert await other.request_cancel("acme", "resp_c") is False  # asked already
        assert await other.request_cancel("umbrella", "resp_d") is False  # another tenant's: not found
        assert await other.delete("acme", "resp_d") is True
        assert await owner.heartbeat(["resp_c", "resp_d"]) == (["resp_c"], ["resp_d"], [])
        assert await owner.put("acme", body("resp_c", "cancelled"), []) is True
        assert await owner.heartbeat(["resp_c"]) == ([], [], [])  # ended by its owner: nothing to do
        assert await owner.put("acme", body("resp_d", "cancelled"), []) is False  # a deleted one stays deleted
        assert row(db_url, "resp_d") is None
        assert (await other.get("acme", "resp_c")).status == "cancelled"  # type: ignore[union-attr]
        assert await other.request_cancel("acme", "resp_c") is False  # ended

    asyncio.run(main())


def test_ordinary_responses_and_rows_from_before_0010_have_no_lease(db_url: str) -> None:
    """A row written before the migration (a background one still `queued`, by a gateway that kept no
    lease) reads as it was, and is never failed: nothing says its gateway is gone. Ordinary responses are
    written as before (no owner)."""
    from alembic import command

    from owstack.storage.migrator import alembic_config

    eng = storage.engine(db_url)
    with eng.connect() as conn, conn.begin():
        command.upgrade(alembic_config(connection=conn), "0009_admin_keys")
    old = sa.table(
        "responses",
        *(sa.column(c) for c in ("id", "tenant", "created_at", "expires_at", "status", "body", "items")),
    )
    packed = zlib.compress(orjson.dumps(body("resp_old", "queued")))
    with eng.begin() as conn:
        conn.execute(
            sa.insert(old).values(
                id="resp_old", tenant="acme", created_at=T0, expires_at=T0 + 86_400, status="queued", body=packed,
                items=zlib.compress(b"[]"),
            )
        )  # fmt: skip
    storage.migrate(db_url)
    clock = Clock()
    store = ResponseStore(db_url, 3600, lease_s=30, clock=clock)

    async def main() -> None:
        clock.now = T0 + 3600
        found = await store.get("acme", "resp_old")
        assert found is not None and found.status == "queued" and found.body["id"] == "resp_old"
        assert await store.put("acme", body("resp_plain", "completed", background=False), []) is True
        plain = row(db_url, "resp_plain")
        assert plain["owner"] is None and plain["lease_until"] is None

    asyncio.run(main())
    with eng.connect() as conn, conn.begin():
        command.downgrade(alembic_config(connection=conn), "0009_admin_keys")
    assert "owner" not in {c["name"] for c in sa.inspect(eng).get_columns("responses")}
