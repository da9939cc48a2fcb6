"""engine/flights.py: one background task at a time per key; close waits for them."""

from __future__ import annotations

import threading

import pytest

from hatchctl.engine.flights import Flights
from tests.conftest import poll


def test_one_task_at_a_time_per_key_and_the_key_free_again_when_it_ends() -> None:
    flights: Flights[str] = Flights("test")
    release, ran = threading.Event(), []

    def task(name: str) -> None:
        release.wait(30)
        ran.append(name)

    assert flights.start("a", lambda: task("a1"))
    assert flights.busy("a") and not flights.idle("a")
    assert not flights.start("a", lambda: task("a2"))  # one under way for "a": not started
    assert flights.start("b", lambda: task("b1"))  # another key runs beside it
    release.set()
    poll(lambda: flights.idle("a") and flights.idle("b"), what="both tasks ended")
    assert sorted(ran) == ["a1", "b1"]
    assert flights.start("a", lambda: task("a3"))  # free again
    flights.close()
    assert sorted(ran) == ["a1", "a3", "b1"]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_task_that_raised_frees_its_key() -> None:
    flights: Flights[int] = Flights("test")
    go = threading.Event()

    def boom() -> None:
        go.wait(30)
        raise RuntimeError("a bug in a task")

    assert flights.start(1, boom)
    thread = flights.threads[1]
    go.set()
    thread.join()  # (its exception reported within this test, where it is expected)
    assert flights.idle(1) and flights.threads == {}
    flights.close()


def test_close_waits_for_the_tasks_under_way_and_starts_nothing_after() -> None:
    flights: Flights[int] = Flights("test")
    started, ended = threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        threading.Timer(0.05, ended.set).start()
        ended.wait(30)

    assert flights.start(1, slow)
    started.wait(30)
    flights.close()
    assert ended.is_set()  # close returned only after the task did
    assert not flights.idle(2) and not flights.start(2, slow)
