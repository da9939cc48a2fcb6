"""The simulated planner (``hatchctl sim-agent`` with ``HATCH_ROLE=planner``): writes the specs
its feature description's ``sim: files:`` block names into its working directory (the plan's
``out/``), then exits. Used by the tests and the demo of ``hatchctl plan``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hatchctl.errors import SpecError
from hatchctl.state.plan import read_feature


def main(env: dict[str, str]) -> int:
    feature_file = env.get("HATCH_FEATURE_FILE", "")
    out = Path(env.get("HATCH_PLAN_DIR") or os.getcwd())
    if not feature_file:
        sys.stderr.write("hatchctl: the simulated planner needs HATCH_FEATURE_FILE\n")
        return 2
    try:
        feature = read_feature(Path(feature_file))
    except SpecError as exc:
        sys.stderr.write(f"sim-agent: {exc}\n")
        return 1
    files = feature.sim.files if feature.sim else {}
    print(f"sim-agent planner {feature.name}: {len(files)} spec(s)", flush=True)
    for name, text in files.items():
        if "/" in name or name.startswith("."):
            sys.stderr.write(f"sim-agent: not a file name: {name!r}\n")
            return 2
        (out / name).write_text(text, encoding="utf-8")
        print(f"  wrote {name}", flush=True)
    return 0
