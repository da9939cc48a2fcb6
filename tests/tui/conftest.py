"""The control room's tests: notifications never expire while a test runs (Textual's default
is 5 s), so a test that counts them, or a snapshot that shows one, asserts what happened and
not how fast a loaded machine got there.

Python's cyclic garbage collector runs rarely while a test here runs: a Textual app makes and
keeps alive many objects (widgets, styles, strips, caches) for the seconds a test takes, so with
the default thresholds (700, 10, 10) they are promoted to the oldest generation and full
collections of the worker's whole heap ran again and again: about a quarter of these tests'
CPU. The thresholds are restored after each test (the rest of the suite keeps the defaults); the
garbage is collected then as usual. Nothing a test asserts depends on when cycles are freed."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from hatchctl.tui.app import HatchApp

GC_THRESHOLDS = (20_000, 50, 100)


@pytest.fixture(autouse=True)
def _notifications_stay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(HatchApp, "NOTIFICATION_TIMEOUT", 3600.0)


@pytest.fixture(autouse=True)
def _collect_garbage_rarely() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)
