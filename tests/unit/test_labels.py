"""Host labels, in a spec (host_labels) and in hatch.toml ([hosts.NAME] labels): a bad one is
one problem line naming it, never a traceback."""

from __future__ import annotations

from pathlib import Path

from hatchctl.state.spec import parse_spec
from tests.conftest import hatchctl, make_repo, write_spec


def test_a_bad_host_label_in_a_spec_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "A-1.md"
    path.write_text("---\nid: A-1\ntitle: t\nhost_labels: [gpu, 'Big GPU']\n---\nDo it.\n")
    parsed = parse_spec(path.read_text(), path)
    assert parsed.spec is None
    assert len(parsed.problems) == 1
    assert "host label 'Big GPU' must match" in parsed.problems[0]


def test_a_bad_label_in_hatch_toml_is_one_error_line(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "p")
    (root / "hatch.toml").write_text(
        '[project]\nname = "p"\n[hosts.gpu1]\nssh = "h@example.invalid"\nroot = "/srv/h"\n'
        'labels = ["gpu", "-x"]\n'
    )
    write_spec(root / "specs", "A-1")
    out = hatchctl("-C", str(root), "validate")
    assert out.returncode != 0
    assert "label '-x' must match" in out.stderr + out.stdout
    assert "Traceback" not in out.stderr
