"""A feature held and reviewed as a whole through a running supervisor: `approve --feature`
refuses while a task of it is not in review (naming it), `reject --feature` sends back only
what waits, `hold|unhold --feature` reach every unfinished task, `review --feature` shows the
tasks and their combined change, then `approve --feature` approves them all and they merge."""

from __future__ import annotations

from tests.conftest import hatchctl
from tests.integration.conftest import Projects, SupervisorProcess, hatchctl_here, wait_for


def test_a_feature_is_held_and_reviewed_as_a_whole(projects: Projects) -> None:
    p = projects.make(
        {
            "A": {"feature": "calc", "sim": {"files": {"a.txt": "a\n"}}},
            # B waits for a message: it is still in its factory run when A waits for review
            "B": {"feature": "calc", "sim": {"factory": ["chat"], "files": {"b.txt": "b\n"}}},
            "C": {"sim": {"files": {"c.txt": "c\n"}}},  # in no feature
        },
        config={
            "project": {"review": "human"},
            "limits": {"idle_timeout": "60s", "stall_after": "60s"},
        },
    )
    root = str(p.root)
    sup = SupervisorProcess(p)
    try:
        sup.wait_running()
        store = p.open_store()  # polled directly: a `hatchctl status` per poll costs CPU

        def where(task_id: str) -> tuple[str, str | None, int]:
            t = store.task(task_id)
            return (t.state, t.phase, t.iteration) if t else ("", None, 0)

        wait_for(lambda: where("A")[:2] == ("active", "review"), what="A waiting for review")
        wait_for(lambda: any(r.state == "running" for r in store.runs("B")), what="B's agent")

        # refusals and reads run in this process (hatchctl_here); what acts is a CLI process
        out = hatchctl_here("-C", root, "approve", "--feature", "calc")
        assert out.returncode == 1 and out.stdout == "", out.stderr
        assert "feature calc is not ready for review as a whole: B is active (phase factory)" in (
            out.stderr
        )
        assert where("A")[:2] == ("active", "review")  # nothing approved

        out = hatchctl("-C", root, "reject", "--feature", "calc", "--note", "say alpha")
        assert out.returncode == 0, out.stderr
        assert "A  rejected A: the factory starts iteration 2" in out.stdout
        assert "B  left alone (active (phase factory))" in out.stdout

        out = hatchctl("-C", root, "hold", "--feature", "calc")
        assert out.returncode == 0, out.stderr
        assert "feature calc: hold 2 of 2 task(s)" in out.stdout
        assert "B  held B (its factory finishes its run first)" in out.stdout
        assert [store.task(t).held for t in "ABC"] == [1, 1, 0]  # type: ignore[union-attr]
        out = hatchctl("-C", root, "unhold", "--feature", "calc")
        assert out.returncode == 0 and "unheld A" in out.stdout and "unheld B" in out.stdout
        assert [store.task(t).held for t in "ABC"] == [0, 0, 0]  # type: ignore[union-attr]

        out = hatchctl_here("-C", root, "hold", "--feature", "calk")
        assert out.returncode == 1 and out.stderr == (
            "hatchctl: no feature 'calk' (features: calc)\n"
        )
        out = hatchctl_here("-C", root, "hold", "A", "--feature", "calc")
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and "not allowed" in out.stderr

        assert hatchctl("-C", root, "send", "B", "finish").returncode == 0
        wait_for(lambda: where("A") == ("active", "review", 2), what="A's second round")
        wait_for(lambda: where("B")[:2] == ("active", "review"), what="B waiting for review")
        out = hatchctl_here("-C", root, "review", "--feature", "calc")
        assert out.returncode == 0, out.stderr
        assert "feature calc: 2 waiting for review, 0 done, 0 not ready" in out.stdout
        stat = {
            line.split("|")[0].strip(): line.split("|")[1].strip()
            for line in out.stdout.splitlines()
            if "|" in line and "hatchctl" not in line
        }
        assert stat["a.txt"] == stat["b.txt"] == "+1 -0" and "c.txt" not in stat
        assert "hatchctl approve --feature calc" in out.stdout

        out = hatchctl("-C", root, "approve", "--feature", "calc")
        assert out.returncode == 0, out.stderr + sup.output()
        lines = out.stdout.splitlines()
        assert lines[1:] == ["  A  approved A: merging", "  B  approved B: merging"]
        wait_for(lambda: where("A")[0] == where("B")[0] == "completed", what="both merged")
        store.close()
    finally:
        sup.stop()  # (not `hatchctl down`: not what this test is about)
        sup.kill()
