"""Running independent steps of one patient's run on several threads.

Oxigraph and pyrudof release the GIL while they parse, plan and evaluate, but pyoxigraph also takes it back
for every row and triple it hands over, so two busy threads mostly wait for each other (session 14: validation
on a thread beside the engine saved ~0 ms). What uses the threads now: validation beside reasoning for a
process's first validated recommendation (later ones validate in the helper process of
:mod:`myeloma_kg.offload`), and a reasoner asked to be concurrent (``Reasoner(concurrent=True)``: the rules
of a wave and the API queries). Cohort runs do not use this: their worker processes keep every core busy.

``MYELOMA_KG_THREADS`` sets the number of threads (default: 2, or 1 on a single-core machine; 1 runs
everything in the calling thread).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_pool: tuple[int, ThreadPoolExecutor] | None = None  # (owning process id, pool)


def thread_count() -> int:
    """How many threads a run may use (``MYELOMA_KG_THREADS``, else 2 when the machine has 2 cores)."""
    setting = os.environ.get("MYELOMA_KG_THREADS", "").strip()
    if setting.isdigit() and int(setting) >= 1:
        return int(setting)
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def _executor() -> ThreadPoolExecutor:
    """The process's helper threads (a process started by fork gets its own)."""
    global _pool
    with _lock:
        if _pool is None or _pool[0] != os.getpid():
            workers = max(thread_count() - 1, 1)
            _pool = (os.getpid(), ThreadPoolExecutor(max_workers=workers, thread_name_prefix="myeloma-kg"))
        return _pool[1]


def submit(call: Callable[..., T], *args: Any) -> Future[T] | None:
    """Start ``call(*args)`` on a helper thread; None when runs are single-threaded (the caller then
    calls it itself)."""
    if thread_count() < 2:
        return None
    return _executor().submit(call, *args)


def run_all(calls: Sequence[Callable[[], T]]) -> list[T]:
    """The results of ``calls``, in order. The calling thread and the helper threads take the calls one
    by one from a shared list, so the work finishes even when every helper is busy with something else
    (the caller then does it all); nothing waits for a helper to become free.

    The first exception (in the order of ``calls``) is raised once every call has finished.
    """
    count = len(calls)
    if count < 2 or thread_count() < 2:
        return [call() for call in calls]
    results: list[Any] = [None] * count
    errors: list[BaseException | None] = [None] * count
    finished = [threading.Event() for _ in calls]
    taken = [0]
    lock = threading.Lock()

    def take_calls() -> None:
        while True:
            with lock:
                index = taken[0]
                if index >= count:
                    return
                taken[0] = index + 1
            try:
                results[index] = calls[index]()
            except BaseException as exc:  # noqa: BLE001 -- re-raised in the caller below
                errors[index] = exc
            finally:
                finished[index].set()

    executor = _executor()
    for _ in range(min(thread_count() - 1, count - 1)):
        executor.submit(take_calls)
    take_calls()
    for event in finished:
        event.wait()
    for error in errors:
        if error is not None:
            raise error
    return results
