"""Helper threads: results in order, errors raised, no deadlock when the helpers are busy."""

from __future__ import annotations

import threading

import pytest

from myeloma_kg import concurrency
from myeloma_kg.concurrency import run_all, submit, thread_count


def test_results_come_back_in_order() -> None:
    assert run_all([lambda i=i: i * i for i in range(20)]) == [i * i for i in range(20)]
    assert run_all([]) == []


def test_the_first_error_in_call_order_is_raised_after_all_ran() -> None:
    ran: list[int] = []

    def fail(i: int) -> int:
        ran.append(i)
        raise ValueError(str(i))

    with pytest.raises(ValueError, match="^1$"):
        run_all([lambda: ran.append(0), lambda: fail(1), lambda: fail(2), lambda: ran.append(3)])
    assert sorted(ran) == [0, 1, 2, 3]


def test_the_caller_does_the_work_when_every_helper_is_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYELOMA_KG_THREADS", "2")
    release = threading.Event()
    blocker = submit(release.wait)  # occupies the only helper thread
    assert blocker is not None
    try:
        caller = threading.get_ident()
        threads = run_all([threading.get_ident for _ in range(5)])
        assert set(threads) == {caller}
    finally:
        release.set()
        blocker.result(timeout=10)


def test_one_thread_runs_everything_in_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYELOMA_KG_THREADS", "1")
    assert thread_count() == 1 and submit(lambda: 1) is None
    caller = threading.get_ident()
    assert set(run_all([threading.get_ident for _ in range(4)])) == {caller}


def test_a_new_process_gets_its_own_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MYELOMA_KG_THREADS", "2")
    first = concurrency._executor()
    monkeypatch.setattr(concurrency.os, "getpid", lambda: -1)
    assert concurrency._executor() is not first
