"""The feature description reader and the proposal check (no agent): one clear problem per bad
input, never an exception; ids, dependencies and cycles checked with the project's specs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hatchctl.errors import SpecError
from hatchctl.state.plan import check, read_feature
from tests.conftest import write_spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("---\nfeature: a/b\n---\nx\n", "invalid feature name 'a/b'"),
        ("---\nfeature: ok\nowner: me\n---\nx\n", "unknown front matter key 'owner'"),
        ("---\nfeature: ok\n", "front matter is not closed"),
        ("---\nfeature: a\nfeature: b\n---\n", "duplicate key 'feature'"),
        ("---\n- a list\n---\n", "must be a mapping"),
        ("---\nsim: {factory: [explode]}\n---\n", "invalid sim block"),
        ("x" * (49 * 1024), "larger than"),
    ],
)
def test_bad_feature_descriptions_are_one_clear_error(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "f.md"
    path.write_text(text)
    with pytest.raises(SpecError, match=message):
        read_feature(path)


def test_a_fifo_or_a_link_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.md")
    with pytest.raises(SpecError, match="not a regular file"):
        read_feature(tmp_path / "fifo.md")
    (tmp_path / "link.md").symlink_to("/etc/passwd")
    with pytest.raises(SpecError, match="symbolic link"):
        read_feature(tmp_path / "link.md")


def test_name_from_front_matter_or_stem(tmp_path: Path) -> None:
    (tmp_path / "search.md").write_text("Find things.\n")
    assert read_feature(tmp_path / "search.md").name == "search"
    (tmp_path / "x.md").write_text("---\nfeature: billing\n---\nPay.\n")
    assert read_feature(tmp_path / "x.md").name == "billing"


def test_check_with_the_project_specs(tmp_path: Path) -> None:
    specs, out = tmp_path / "specs", tmp_path / "out"
    out.mkdir()
    write_spec(specs, "A")
    write_spec(out, "A")  # taken
    write_spec(out, "N-1", "depends_on: [GHOST]\n")
    write_spec(out, "N-2", "feature: other\n")
    (out / "wrong-name.md").write_text("---\nid: N-3\ntitle: t\n---\nx\n")
    (out / "notes.txt").write_text("ignored\n")
    prop = check(out, specs, "f")
    assert not prop.ok
    assert "N-2.md: feature 'other' is not 'f'" in prop.problems
    assert "wrong-name.md: a spec's file is named after its id (N-3.md)" in prop.problems

    for p in out.iterdir():
        p.unlink()
    write_spec(out, "A")
    write_spec(out, "N-1", "depends_on: [GHOST]\n")
    prop = check(out, specs, "f")
    assert prop.problems == ["A.md: id A is taken by an existing spec"]

    (out / "A.md").unlink()
    prop = check(out, specs, "f")
    assert len(prop.problems) == 1 and "unknown dependency 'GHOST'" in prop.problems[0]
    assert prop.problems[0].startswith("N-1.md:")

    write_spec(out, "N-1", "depends_on: [A]\n")
    prop = check(out, specs, "f")
    assert prop.ok and "feature: f" in prop.specs["N-1"]
