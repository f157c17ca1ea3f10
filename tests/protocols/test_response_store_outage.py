"""The Responses store opens its database on first use: a database that cannot be reached then is a 503
`store_unavailable` for the request that needed it (never a 500), and the next call tries again."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from owstack.errors import ServiceUnavailable
from owstack.protocols.responses.store import ResponseStore


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again on return: connections are refused


def test_an_unreachable_database_is_a_503_and_the_next_call_tries_again(tmp_path: Path) -> None:
    store = ResponseStore(f"postgresql://postgres@127.0.0.1:{_closed_port()}/nowhere", retention_s=60)

    async def main() -> None:
        await store.start()  # opens nothing: the gateway starts whatever the database's state
        for _ in range(2):
            with pytest.raises(ServiceUnavailable) as refused:
                await store.put("acme", {"id": "resp_1", "status": "completed"}, [])
            assert refused.value.code == "store_unavailable" and "unavailable" in str(refused.value)
        store.url = f"sqlite:///{tmp_path / 'owstack.db'}"  # the database is back (here: another one)
        await store.put("acme", {"id": "resp_1", "status": "completed"}, [{"type": "message"}])
        found = await store.get("acme", "resp_1")
        assert found is not None and found.items == [{"type": "message"}]
        assert await store.get("other", "resp_1") is None

    asyncio.run(main())
