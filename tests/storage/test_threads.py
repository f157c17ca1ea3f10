"""`storage.threads.Beside`: calls run on a second thread while the caller blocks in its own."""

from __future__ import annotations

import threading

import pytest

from owstack.storage.threads import Beside


def test_the_calls_run_on_the_helper_thread_while_the_caller_blocks() -> None:
    beside = Beside("beside-test")
    both = threading.Barrier(2, timeout=10)  # broken (an error) unless the two sides run at the same time
    names: list[str] = []

    def call() -> None:
        names.append(threading.current_thread().name)
        both.wait()

    for _ in range(3):  # the thread is reused
        beside.start([call])
        both.wait()  # the caller's own blocking call
        beside.wait()
    assert names == ["beside-test"] * 3
    beside.close()
    assert beside._thread is None


def test_a_failing_call_is_logged_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    beside = Beside("beside-test")
    ran: list[int] = []

    def boom() -> None:
        raise RuntimeError("a bug")

    beside.start([boom, lambda: ran.append(1)])
    beside.wait()
    beside.wait()  # a second wait returns at once
    assert ran == [1] and "a call run beside the commit failed" in caplog.text
    beside.close()
    beside.close()  # idempotent


def test_without_a_thread_the_calls_run_in_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    beside = Beside("beside-test")
    names: list[str] = []
    beside.start([lambda: names.append(threading.current_thread().name)])
    beside.wait()
    assert names == [threading.current_thread().name]
