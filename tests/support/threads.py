"""Running the same work in several threads released at once (races on real databases)."""

from __future__ import annotations

import threading
from typing import Any, Callable


def at_once(count: int, work: Callable[[int], Any], *, timeout: float = 120) -> dict[int, Any]:
    """Run ``work(i)`` for each ``i`` below ``count`` in its own thread, all released together by a
    barrier; what each returned, or the exception it raised, by ``i`` (a thread still running after
    ``timeout`` seconds has no entry)."""
    barrier = threading.Barrier(count)
    results: dict[int, Any] = {}

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - the test inspects what each thread got
            results[i] = exc

    workers = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=timeout)
    return results
