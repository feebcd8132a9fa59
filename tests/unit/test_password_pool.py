"""Password hashing runs on its own bounded pool (issue 15, finding 2): a flood of logins
cannot take the default thread pool that image checks and `format=` conversions use, and
the default pool being busy does not stop logins either."""

from __future__ import annotations

import asyncio
import threading

from qqavatar.members import passwords


def test_hashing_does_not_need_the_default_pool() -> None:
    async def main() -> bool:
        loop = asyncio.get_running_loop()
        release = threading.Event()
        # Occupy every thread of the loop's default pool (at most 32) until the hash is done.
        blockers = [loop.run_in_executor(None, release.wait) for _ in range(64)]
        try:
            hashed = await asyncio.wait_for(passwords.ahash_password("e" * 32), 30)
            ok = await asyncio.wait_for(passwords.averify_password("e" * 32, hashed), 30)
        finally:
            release.set()
            await asyncio.gather(*blockers)
        return ok

    assert asyncio.run(main())


def test_hashing_threads_are_few_and_named() -> None:
    seen: set[str] = set()

    def record(secret: str) -> str:
        seen.add(threading.current_thread().name)
        return secret

    async def main() -> None:
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(passwords._POOL, record, "x")
                               for _ in range(50)))

    asyncio.run(main())
    assert seen and all(name.startswith("qqavatar-scrypt") for name in seen)
    assert len(seen) <= passwords.POOL_THREADS


def test_an_unknown_name_is_checked_against_a_real_hash() -> None:
    assert passwords.decoy().startswith("scrypt$")
    assert asyncio.run(passwords.averify_decoy("e" * 32)) is None
    assert passwords.verify_password("e" * 32, passwords.decoy()) is False
