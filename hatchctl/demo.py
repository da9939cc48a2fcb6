"""The built-in demo project: a tiny Python package and specs that exercise every path.

Expected end states (``EXPECTED``): the three-strike task fails, its dependent is blocked, every
other task completes; the QA-rejected task needs two iterations; the hung agent is restarted.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

from hatchctl.config import default_project_name
from hatchctl.errors import HatchError
from hatchctl.runtime import proc

EXPECTED = {
    "CALC-001": "completed",
    "CALC-002": "completed",
    "CALC-003": "completed",
    "CALC-004": "completed",
    "CALC-005": "failed",
    "CALC-006": "blocked",
    "STATS-1": "completed",
    "STATS-2": "completed",
    "STATS-3": "completed",
}

# what the viewer should watch for: said before the demo starts and when each task starts
NARRATION = {
    "CALC-001": "prints 300 lines of build output (watch its log tail), then completes",
    "CALC-002": "QA rejects the first attempt; the factory gets its findings and QA approves the second",
    "CALC-003": "the factory hangs once: the idle policy kills and restarts it",
    "CALC-004": "already done: its acceptance passes before any agent starts (the fast path)",
    "CALC-005": "fails three different ways: broken tests, a lie about its commits, no summary; "
    "after three strikes it fails",
    "CALC-006": "depends on CALC-005, so it ends blocked",
    "STATS-1": "TDD: its test must fail before the factory starts; cycles 2 and 3 wait for it",
    "STATS-2": "TDD cycle 2: starts only when STATS-1 is merged",
    "STATS-3": "TDD cycle 3: starts only when STATS-2 is merged",
}
PACE_INTERACTIVE = 2.0  # about 8 s of visible work per agent run: time to press keys on it


def narration() -> list[str]:
    """One line per task: what will happen to it and how it should end."""
    width = max(len(k) for k in EXPECTED)
    return [f"{k:<{width}}  {NARRATION[k]} (expected: {v})" for k, v in EXPECTED.items()]


CONFIG = """\
# The hatchctl demo: simulated agents, tiny timeouts so every path runs in about a minute.
[project]
name = "{name}"
specs_dir = "specs"
base_ref = "main"
integration_branch = "hatch/integration"
regression = "python3 -m unittest"

[limits]
max_active = 3
max_strikes = 3
run_timeout = "{run_timeout}s"
idle_timeout = "2s"
stall_after = "1s"
test_timeout = "30s"
summary_timeout = "5s"
summary_requests = 1
kill_grace = "1s"
tick = "0.25s"

[limits.restart]
initial_backoff = "0.5s"
multiplier = 2
max_backoff = "2s"
max_restarts = 3
reset_after = "10m"

[agents.factory]
command = ["hatchctl", "sim-agent"]
prompt_delivery = "argument"
stop = "exit"
env = {{ HATCH_SIM_PACE = "{pace}" }}

[agents.qa]
command = ["hatchctl", "sim-agent"]
prompt_delivery = "argument"
stop = "exit"
env = {{ HATCH_SIM_PACE = "{pace}" }}
"""

FILES = {
    "calc/__init__.py": '"""calc: the hatchctl demo package."""\n\n__version__ = "1.0"\n',
    "tests/__init__.py": "",
    "tests/test_version.py": textwrap.dedent("""\
        import unittest

        import calc


        class VersionTest(unittest.TestCase):
            def test_version(self):
                self.assertEqual(calc.__version__, "1.0")
        """),
    "README.md": "# calc\n\nThe hatchctl demo project. Run `python3 -m unittest`.\n",
}


def _test(module: str, imports: str, body: str) -> str:
    return f"import unittest\n\n{imports}\n\n\nclass T(unittest.TestCase):\n{textwrap.indent(body, '    ')}"


def _spec(front: str, text: str) -> str:
    return f"---\n{front.strip()}\n---\n{text.strip()}\n"


def _yaml_block(files: dict[str, str], indent: int = 4) -> str:
    pad = " " * indent
    out = []
    for path, content in files.items():
        out.append(f"{pad}{path}: |")
        out.extend(f"{pad}  {line}" if line else "" for line in content.splitlines())
    return "\n".join(out)


def specs() -> dict[str, str]:
    arith = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n"
    arith_test = _test(
        "arith",
        "from calc.arith import add, sub",
        "def test_add(self):\n    self.assertEqual(add(2, 3), 5)\n\n"
        "def test_sub(self):\n    self.assertEqual(sub(2, 3), -1)\n",
    )
    mul = (
        "from calc.arith import add\n\n\ndef mul(a, b):\n    total = 0\n    for _ in range(abs(b)):\n"
        "        total = add(total, a)\n    return total if b >= 0 else -total\n"
    )
    mul_test = _test(
        "mul",
        "from calc.mul import mul",
        "def test_mul(self):\n    self.assertEqual(mul(4, -3), -12)\n",
    )
    power = "def power(a, n):\n    return a**n\n"
    power_test = _test(
        "power",
        "from calc.power import power",
        "def test_power(self):\n    self.assertEqual(power(2, 10), 1024)\n",
    )
    div = "def div(a, b):\n    return a / b\n"
    div_broken = "def div(a, b):\n    return a * b\n"
    div_test = _test(
        "div",
        "from calc.div import div",
        "def test_div(self):\n    self.assertEqual(div(9, 3), 3)\n",
    )
    mod = "def mod(a, b):\n    return a % b\n"
    mod_test = _test(
        "mod",
        "from calc.mod import mod",
        "def test_mod(self):\n    self.assertEqual(mod(7, 3), 1)\n",
    )
    stats1 = "def mean(xs):\n    return sum(xs) / len(xs)\n"
    stats2 = (
        "\n\ndef median(xs):\n    s = sorted(xs)\n    m = len(s) // 2\n"
        "    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2\n"
    )
    stats3 = "\n\ndef variance(xs):\n    m = mean(xs)\n    return sum((x - m) ** 2 for x in xs) / len(xs)\n"
    t1 = _test(
        "s1",
        "from calc.stats import mean",
        "def test_mean(self):\n    self.assertEqual(mean([1, 2, 3]), 2)\n",
    )
    t2 = _test(
        "s2",
        "from calc.stats import mean, median",
        "def test_median(self):\n    self.assertEqual(median([3, 1, 2, 10]), 2.5)\n"
        "    self.assertEqual(mean([1, 3]), 2)\n",
    )
    t3 = _test(
        "s3",
        "from calc.stats import variance",
        "def test_variance(self):\n    self.assertEqual(variance([1, 2, 3]), 2 / 3)\n",
    )

    def sim(files: dict[str, str], extra: str = "", append: dict[str, str] | None = None) -> str:
        out = "sim:\n  files:\n" + _yaml_block(files)
        if append:
            out += "\n  append:\n" + _yaml_block(append)
        return out + ("\n" + extra if extra else "")

    return {
        "CALC-001.md": _spec(
            "id: CALC-001\ntitle: 'Add and subtract'\npriority: 90\n"
            "files: [calc/arith.py, tests/test_arith.py]\n"
            "acceptance: python3 -m unittest tests.test_arith\nloc_cap: 100\n"
            + sim(
                {"calc/arith.py": arith, "tests/test_arith.py": arith_test},
                "  factory: [noisy]\n  noisy_lines: 300",
            ),
            "Add `calc/arith.py` with `add(a, b)` and `sub(a, b)`, with unit tests.",
        ),
        "CALC-002.md": _spec(
            "id: CALC-002\ntitle: 'Multiply (QA rejects the first attempt)'\npriority: 80\n"
            "depends_on: [CALC-001]\nfiles: [calc/mul.py, tests/test_mul.py]\n"
            "acceptance: python3 -m unittest tests.test_mul\nloc_cap: 100\n"
            + sim({"calc/mul.py": mul, "tests/test_mul.py": mul_test}, "  qa: [reject, ok]"),
            "Add `calc/mul.py` with `mul(a, b)` built on `calc.arith.add`.",
        ),
        "CALC-003.md": _spec(
            "id: CALC-003\ntitle: 'Power (the agent hangs once)'\npriority: 70\n"
            "files: [calc/power.py, tests/test_power.py]\n"
            "acceptance: python3 -m unittest tests.test_power\nloc_cap: 100\n"
            + sim(
                {"calc/power.py": power, "tests/test_power.py": power_test},
                "  factory: [[hang, ok]]\n  qa: [slow]\n  slow_seconds: 1",
            ),
            "Add `calc/power.py` with `power(a, n)`.",
        ),
        "CALC-004.md": _spec(
            "id: CALC-004\ntitle: 'Version 1.0 (already done: fast path)'\npriority: 60\n"
            "files: [calc/__init__.py]\nacceptance: python3 -m unittest tests.test_version\n",
            "Expose `calc.__version__ == '1.0'`. It already holds, so no agent is started.",
        ),
        "CALC-005.md": _spec(
            "id: CALC-005\ntitle: 'Divide (fails three times)'\npriority: 50\n"
            "files: [calc/div.py, tests/test_div.py]\n"
            "acceptance: python3 -m unittest tests.test_div\nloc_cap: 100\n"
            + sim(
                {"calc/div.py": div, "tests/test_div.py": div_test},
                "  broken_files:\n"
                + _yaml_block({"calc/div.py": div_broken, "tests/test_div.py": div_test})
                + "\n  factory: [fail_tests, false_claims, no_summary]",
            ),
            "Add `calc/div.py` with `div(a, b)`. The simulated factory fails three different ways.",
        ),
        "CALC-006.md": _spec(
            "id: CALC-006\ntitle: 'Modulo (blocked by divide)'\npriority: 40\ndepends_on: [CALC-005]\n"
            "files: [calc/mod.py, tests/test_mod.py]\nacceptance: python3 -m unittest tests.test_mod\n"
            + sim({"calc/mod.py": mod, "tests/test_mod.py": mod_test}),
            "Add `calc/mod.py`. It depends on CALC-005, so it ends blocked.",
        ),
        "STATS-1.md": _spec(
            "id: STATS-1\ntitle: 'TDD cycle 1: mean'\npriority: 30\ntdd: true\n"
            "files: [calc/stats.py, tests/test_stats_1.py]\n"
            "acceptance: python3 -m unittest tests.test_stats_1\n"
            + sim({"calc/stats.py": stats1, "tests/test_stats_1.py": t1}),
            "TDD cycle 1 of 3: `calc.stats.mean`. The test must fail before the factory starts.",
        ),
        "STATS-2.md": _spec(
            "id: STATS-2\ntitle: 'TDD cycle 2: median'\npriority: 30\ntdd: true\ndepends_on: [STATS-1]\n"
            "files: [calc/stats.py, tests/test_stats_2.py]\n"
            "acceptance: python3 -m unittest tests.test_stats_2\n"
            + sim({"tests/test_stats_2.py": t2}, append={"calc/stats.py": stats2}),
            "TDD cycle 2 of 3: add `median` to `calc/stats.py`, keeping cycle 1's `mean`.",
        ),
        "STATS-3.md": _spec(
            "id: STATS-3\ntitle: 'TDD cycle 3: variance'\npriority: 30\ntdd: true\ndepends_on: [STATS-2]\n"
            "files: [calc/stats.py, tests/test_stats_3.py]\n"
            "acceptance: python3 -m unittest tests.test_stats_3\n"
            + sim({"tests/test_stats_3.py": t3}, append={"calc/stats.py": stats3}),
            "TDD cycle 3 of 3: add `variance` (built on `mean`) to `calc/stats.py`.",
        ),
    }


def _git(root: Path, *args: str) -> None:
    proc.run(["git", "-C", str(root), *args], timeout=30)


MARKER = ".hatch-demo"


def is_demo(root: Path) -> bool:
    return (root / MARKER).is_file()


def _teardown(root: Path) -> None:
    """Stop an old demo's tmux server and unmount its worktrees' read-only views."""
    import tomllib

    from hatchctl.project import tmux_socket
    from hatchctl.runtime.scripts import Scripts, builtin_root, unmount_all_under
    from hatchctl.runtime.tmux import Tmux

    try:
        name = tomllib.loads((root / "hatch.toml").read_text())["project"]["name"]
        Tmux(tmux_socket(name, root.resolve())).kill_server()
    except (OSError, KeyError, ValueError, HatchError):
        pass
    scripts = Scripts(builtin_root(), timeout=30)
    for view in (root / ".hatch" / "worktrees").glob("*/project-state-readonly"):
        scripts.run("mount/unmount.sh", str(view))  # a bind mount, or a read-only copy
    unmount_all_under(scripts, root)


def write_demo(root: Path, name: str | None = None, pace: float = 0.0) -> None:
    """Create the demo project at ``root``, which must not exist, be empty, or be an old demo.
    ``pace``: the simulated agents' speed factor (0: full speed; 1: watchable)."""
    if not 0.0 <= pace <= 20.0:
        raise HatchError(f"--pace must be between 0 and 20, not {pace:g}")
    if root.exists() and any(root.iterdir()):
        if not is_demo(root):
            raise HatchError(
                f"{root} exists, is not empty and is not a hatchctl demo; use another --dir"
            )
        _teardown(root)
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text(
        "written by `hatchctl demo`; the directory is recreated on the next run\n"
    )
    for rel, content in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    (root / ".gitignore").write_text(MARKER + "\n__pycache__/\n", encoding="utf-8")
    name = name or default_project_name(root)  # the tmux socket is hatch-<name>
    (root / "hatch.toml").write_text(
        CONFIG.format(name=name, pace=f"{pace:g}", run_timeout=f"{90 + 8 * pace:g}"),
        encoding="utf-8",
    )
    (root / "specs").mkdir()
    for fname, text in specs().items():
        (root / "specs" / fname).write_text(text, encoding="utf-8")
    _git(root, "init", "--quiet", "--initial-branch=main")
    _git(
        root, "-c", "user.name=hatchctl demo", "-c", "user.email=demo@hatchctl.invalid", "add", "-A"
    )
    _git(
        root,
        "-c",
        "user.name=hatchctl demo",
        "-c",
        "user.email=demo@hatchctl.invalid",
        "commit",
        "--quiet",
        "-m",
        "demo: initial project",
    )
    from hatchctl.runtime.gitrepo import exclude_hatch_paths

    exclude_hatch_paths(root)
