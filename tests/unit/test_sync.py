from __future__ import annotations

from pathlib import Path

from hatchctl.state.spec import load_specs
from hatchctl.state.store import Store
from hatchctl.state.sync import sync_specs
from tests.conftest import write_spec


def test_new_specs_become_pending_and_edits_to_active_tasks_wait(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    write_spec(specs, "A", "priority: 10\n")
    write_spec(specs, "B")
    store = Store(tmp_path / "hatch.db")
    report = sync_specs(store, load_specs(specs).specs)
    assert sorted(report.added) == ["A", "B"]
    assert {t.id: t.state for t in store.tasks()} == {"A": "pending", "B": "pending"}
    assert sync_specs(store, load_specs(specs).specs).added == []  # idempotent

    with store.tx() as tx:
        tx.transition_task("A", "pending", "active")
    write_spec(specs, "A", "priority: 99\n")
    write_spec(specs, "B", "priority: 77\n")
    report = sync_specs(store, load_specs(specs).specs)
    assert report.deferred == ["A"] and report.updated == ["B"]
    a, b = store.task("A"), store.task("B")
    assert a is not None and b is not None
    assert a.priority == 10 and a.pending_digest is not None  # not applied mid-run
    assert b.priority == 77
    kinds = [e.kind for e in store.events("A")]
    assert kinds.count("spec_changed_during_run") == 1
    sync_specs(store, load_specs(specs).specs)  # reported once, not on every sync
    assert [e.kind for e in store.events("A")].count("spec_changed_during_run") == 1


def test_specs_unchanged_only_when_every_file_is_what_was_synced(tmp_path: Path) -> None:
    from hatchctl.state.sync import specs_unchanged

    specs = tmp_path / "specs"
    write_spec(specs, "A")
    write_spec(specs, "B")
    store = Store(tmp_path / "hatch.db")
    assert not specs_unchanged(store, specs)  # never synced
    sync_specs(store, load_specs(specs).specs)
    assert specs_unchanged(store, specs)
    write_spec(specs, "B", "priority: 5\n")  # edited
    assert not specs_unchanged(store, specs)
    sync_specs(store, load_specs(specs).specs)
    assert specs_unchanged(store, specs)
    write_spec(specs, "C")  # added
    assert not specs_unchanged(store, specs)
    (specs / "C.md").unlink()
    (specs / "A.md").rename(specs / "A2.md")  # moved: same bytes, another path
    assert not specs_unchanged(store, specs)
