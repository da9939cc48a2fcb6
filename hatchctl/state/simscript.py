"""The ``sim:`` block of a spec: a script for the simulated agent, validated with the spec.

Per role, a list indexed by iteration (the last entry repeats); each entry is a behaviour for
every attempt, or a list of behaviours indexed by attempt (the last repeats).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hatchctl.state.simsteps import NOISY_LINES, SLOW_SECONDS, pick

Behaviour = Literal[
    "ok",  # do the work, run acceptance, commit, write an honest summary
    "approve",  # QA: always approve
    "reject",  # QA: always reject with findings
    "hang",  # print a line, then no output and no CPU, forever
    "crash",  # partial work, then exit 1 with a traceback
    "no_summary",  # do the work, skip the summary (answers a pasted request when interactive)
    "mute",  # like no_summary, but never answers a request
    "bad_summary",  # write a summary that fails validation
    "false_claims",  # claim a commit and a file that do not exist
    "fail_tests",  # commit a broken implementation and report failing tests
    "slow",  # sleep slow_seconds, then ok
    "noisy",  # print noisy_lines lines of output, then ok
    "stubborn",  # ignore SIGTERM and leave a setsid grandchild behind, then hang
    "needs_input",  # ask for permission (Notification hooks), then wait without output
    "chat",  # wait for messages (hatchctl send); "finish" in one: then do the work, as ok
]
Step = Behaviour | list[Behaviour]


class SimScript(BaseModel):
    model_config = ConfigDict(extra="forbid")

    files: dict[str, str] = Field(default_factory=dict)  # written (whole content) by "ok"
    append: dict[str, str] = Field(default_factory=dict)  # appended to existing files by "ok"
    broken_files: dict[str, str] = Field(default_factory=dict)
    factory: list[Step] = Field(default_factory=lambda: ["ok"])  # type: ignore[arg-type]
    qa: list[Step] = Field(default_factory=lambda: ["ok"])  # type: ignore[arg-type]
    slow_seconds: float = Field(default=SLOW_SECONDS, ge=0)
    noisy_lines: int = Field(default=NOISY_LINES, ge=0)
    commit_message: str = ""
    interactive: bool | None = None  # None: follow the agent's stop mode

    def behaviour(self, role: str, iteration: int, attempt: int) -> Behaviour:
        return pick(self.factory if role == "factory" else self.qa, iteration, attempt)  # type: ignore[return-value]
