"""End to end: `hatchctl demo --headless` (9 tasks, 18 agent launches, every failure path), and
the latencies inside it: .stop written -> supervisor acted, run created -> agent started."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HATCHCTL, describe, run

from hatchctl.project import Project
from hatchctl.runtime.scripts import Scripts, builtin_root, unmount_all_under


def iso_to_epoch(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def main(rounds: int = 3) -> None:
    from hatchctl import logsetup

    logsetup.configure(None)
    walls, stop_lat, start_lat = [], [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="hatch-bench-") as tmp:
            root = Path(tmp) / "bench-demo"
            t0 = time.monotonic()
            out = run([*HATCHCTL, "demo", "--headless", "--dir", str(root)])
            walls.append(time.monotonic() - t0)
            assert out.returncode == 0, out.stdout[-2000:] + out.stderr
            project = Project.find(root)
            store = project.open_store()
            events = store.events()
            for r in store.runs():
                stop = root / r.stop_path
                acted = next(
                    (
                        e.at
                        for e in events
                        if e.run_id == r.id and e.kind == "run_state" and e.to_state == "stopped"
                    ),
                    None,
                )
                if stop.exists() and acted is not None:
                    stop_lat.append(acted - iso_to_epoch(json.loads(stop.read_text())["at"]))
                claimed = project.paths.claimed(r.id)
                if claimed.exists():
                    fields = dict(
                        kv.split("=", 1) for kv in claimed.read_text().split() if "=" in kv
                    )
                    start_lat.append(int(fields["started_ns"]) / 1e9 - r.started_at)
            store.close()
            unmount_all_under(Scripts(builtin_root(), timeout=30), root)
    print(describe("demo wall time (9 tasks, 18 launches)", walls, "s", 1.0))
    print(describe(".stop written -> supervisor recorded it", stop_lat))
    print(describe("run row committed -> agent process started", start_lat))


if __name__ == "__main__":
    main()
