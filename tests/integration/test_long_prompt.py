"""A prompt too long for one command-line argument (Linux caps one at 128 KiB) is delivered as
a pointer to the prompt file, instead of failing the launch with "Argument list too long"."""

from __future__ import annotations

from hatchctl.engine.launcher import PROMPT_INLINE_MAX
from tests.integration.conftest import Projects, drain, kinds


def test_a_prompt_over_the_argument_limit_is_delivered_by_file(projects: Projects) -> None:
    body = "é" * 90_000  # 180 KB in UTF-8: a valid spec (under the body cap in characters)
    p = projects.make({"A": {"body": body, "sim": {"files": {"a.txt": "a\n"}}}})
    _, tasks, deps = drain(p)
    assert tasks["A"].state == "completed", tasks["A"].last_error
    assert "prompt_by_file" in kinds(deps, "A")
    factory = next(r for r in deps.store.runs("A") if r.role == "factory")
    pointer = (p.root / factory.prompt_path).read_text()
    assert len(pointer.encode()) < PROMPT_INLINE_MAX and "too long for a command line" in pointer
    full = p.paths.prompt_file("A", "factory", 1, 1)
    assert str(full) in pointer and body in full.read_text()
    log = (p.root / factory.log_path).read_text(errors="replace")
    assert "Argument list too long" not in log
