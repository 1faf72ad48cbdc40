"""Deriving many accounts' secrets on every core (``heron user import``, ``heron import``).

One account costs an Argon2id hash (64 MiB, three passes) and three PBKDF2 runs
(SCRAM-SHA-1/-256/-512, 10,000 iterations each), about 0.1-0.2 s of one core: a
thousand accounts took minutes on one. The work is pure computation on arguments,
so it runs in a pool of processes, one per core, in the command's own process
tree: a running server only hears of the accounts afterwards, over its control
socket, and its loop never waits on a derivation.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from heron.accounts.secrets import Identity, Secrets, derive_secrets

__all__ = ["Derivation", "derive_many"]


@dataclass(frozen=True, slots=True)
class Derivation:
    """One account's password and what its secrets bind: names, SCRAM salt and count."""

    identity: Identity
    password: str
    salt: bytes
    iterations: int


def _derive(job: Derivation) -> Secrets | str:
    try:
        return derive_secrets(job.identity, job.password, salt=job.salt, iterations=job.iterations)
    except ValueError as exc:
        return f"unusable password: {exc}"


def derive_many(
    jobs: Sequence[Derivation],
    *,
    workers: int | None = None,
    progress: Callable[[int], None] = lambda done: None,
) -> Iterator[Secrets | str]:
    """Each job's secrets, or the reason its password cannot be used, in order.

    ``workers`` defaults to the cores this process may run on; ``progress`` is called
    with the count finished so far. One job is derived in this process, with no pool.
    """
    count = workers or len(os.sched_getaffinity(0))
    if count <= 1 or len(jobs) <= 1:
        for done, job in enumerate(jobs, 1):
            yield _derive(job)
            progress(done)
        return
    # Chunks of a few jobs: each round trip to a worker costs ~0.1 ms, a job ~100 ms.
    chunk = max(1, min(16, len(jobs) // (count * 8)))
    with ProcessPoolExecutor(count) as pool:
        for done, result in enumerate(pool.map(_derive, jobs, chunksize=chunk), 1):
            yield result
            progress(done)
