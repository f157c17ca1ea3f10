"""Run as a script by test_kill9: append records from 8 concurrent tasks forever, printing each
acknowledged record as `seq entry_hash` (flushed) once `append` has returned, i.e. once it is fsynced."""

from __future__ import annotations

import asyncio
import sys

from owstack.compliance.config import AuditSection
from owstack.compliance.writer import AuditWriter


async def main(directory: str, keys: str) -> None:
    section = AuditSection(directory=directory, keys_directory=keys, node="crash", checkpoint_every_records=50)
    writer = AuditWriter(section).start()

    async def task(t: int) -> None:
        i = 0
        while True:
            done = await writer.append({"type": "test.load", "task": t, "i": i})
            sys.stdout.write(f"{done.seq} {done.entry_hash}\n")
            sys.stdout.flush()
            i += 1

    await asyncio.gather(*[task(t) for t in range(8)])


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
