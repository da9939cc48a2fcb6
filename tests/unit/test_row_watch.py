"""The control room's refresh reads what changed, not the store (issue 11): RowWatch hands out only
the rows written since the last poll (another connection's writes, as the supervisor's), and
the data source keeps the very TaskView of a task that did not change and reads a finished run's
log only for a row on screen. A real store on disk; a second connection writes."""

from __future__ import annotations

from pathlib import Path

from hatchctl.project import Project
from hatchctl.state.store import RowWatch, Store
from hatchctl.tui.data import DataSource

TASKS = 600  # more than two blocks of 256 rowids


def populate(store: Store) -> dict[str, int]:
    """Tasks T000..T599; T000-T002 finished a factory run each. Their run ids."""
    runs = {}
    with store.tx() as tx:
        for i in range(TASKS):
            tx.insert_task(f"T{i:03d}", title=f"task {i}", priority=TASKS - i)
        for tid in ("T000", "T001", "T002"):
            tx.transition_task(tid, "pending", "active", phase="factory", iteration=1)
            run = tx.insert_run(
                task_id=tid,
                role="factory",
                iteration=1,
                attempt=1,
                window_name=f"{tid}-factory",
                log_path=f".hatch/logs/{tid}.log",
                stop_path="s",
                summary_path="m",
                prompt_path="p",
            )
            tx.transition_run(run.id, "starting", "running", pane_id="%1", pane_pid=1)
            tx.transition_run(run.id, "running", "stopped", exit_code=0, ended_at=1.0)
            tx.transition_run(run.id, "stopped", "succeeded", reason="completed")
            tx.transition_task(tid, "active", "completed", phase=None)
            runs[tid] = run.id
    return runs


def test_a_poll_returns_only_what_another_connection_wrote(tmp_path: Path) -> None:
    db = tmp_path / "hatch.db"
    writer, reader = Store(db), Store(db)
    runs = populate(writer)
    watch = RowWatch()
    first = watch.poll(reader)
    assert first is not None and len(first.tasks) == TASKS and len(first.runs) == 3
    assert watch.poll(reader) is None  # nothing committed since

    with writer.tx() as tx:
        tx.update_task("T300", title="renamed")
        tx.update_run(runs["T001"], metrics='{"turns": 3}')
    changes = watch.poll(reader)
    assert changes is not None
    assert [(t.id, t.title) for t in changes.tasks] == [("T300", "renamed")]
    assert [(r.id, r.metrics) for r in changes.runs] == [(runs["T001"], {"turns": 3})]
    assert not changes.gone_tasks and not changes.gone_runs

    with writer.tx() as tx:
        tx.delete_task("T002")  # with its run
        tx.insert_task("T999", title="new")
    changes = watch.poll(reader)
    assert changes is not None
    assert changes.gone_tasks == ["T002"] and changes.gone_runs == [runs["T002"]]
    assert [t.id for t in changes.tasks] == ["T999"]
    assert watch.poll(reader) is None


def test_unchanged_tasks_keep_their_view_and_finished_logs_wait_for_the_screen(
    tmp_path: Path,
) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "hatch.toml").write_text('[project]\nname = "scale"\n')
    project = Project.find(root)
    writer = project.open_store()
    populate(writer)
    for tid in ("T000", "T001", "T002"):
        log = root / ".hatch" / "logs" / f"{tid}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_bytes(b"working\r\n%s finished\r\n" % tid.encode())
    source = DataSource(project, Store(project.paths.db), clock=lambda: 1000.0)
    source.in_view = ["T000"]  # the only row on screen
    first = source.load()
    lines = {v.task.id: v.last_line for v in first.views[:3]}
    assert lines == {"T000": "T000 finished", "T001": "", "T002": ""}

    with writer.tx() as tx:
        tx.update_task("T300", title="renamed")
    second = source.load()
    changed = [v.task.id for v, w in zip(second.views, first.views, strict=True) if v is not w]
    assert changed == ["T300"] and second.by_id["T300"].task.title == "renamed"

    source.in_view = ["T001"]  # scrolled: that row's line is read, the other still waits
    third = source.load()
    assert third.by_id["T001"].last_line == "T001 finished"
    assert third.by_id["T002"].last_line == ""
    source.want_lines = True  # a text filter wants every line
    assert source.load().by_id["T002"].last_line == "T002 finished"
