"""The control room's tests: notifications never expire while a test runs (Textual's default
is 5 s), so a test that counts them, or a snapshot that shows one, asserts what happened and
not how fast a loaded machine got there. (The cyclic GC's thresholds, which matter most here:
tests/conftest.py.)"""

from __future__ import annotations

import pytest

from hatchctl.tui.app import HatchApp


@pytest.fixture(autouse=True)
def _notifications_stay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(HatchApp, "NOTIFICATION_TIMEOUT", 3600.0)
