"""``hatchctl init`` and ``hatchctl scripts``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from string import Template

from hatchctl import agents
from hatchctl.cmds.common import start_dir
from hatchctl.config import CONFIG_NAME, default_project_name, parse_config
from hatchctl.errors import ConfigError, HatchError
from hatchctl.runtime import proc
from hatchctl.runtime.gitrepo import exclude_hatch_paths
from hatchctl.runtime.scripts import SCRIPT_NAMES, builtin_root, eject

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def template(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def git_toplevel(where: Path) -> Path:
    try:
        out = proc.run(["git", "-C", str(where), "rev-parse", "--show-toplevel"], timeout=10)
    except HatchError:
        raise HatchError(f"{where} is not inside a git repository (run `git init` first)") from None
    return Path(out.stdout.strip())


def init(args: argparse.Namespace) -> int:
    here = start_dir(args).resolve()
    git_toplevel(here)
    config = here / CONFIG_NAME
    if config.exists():
        raise ConfigError(f"{config} already exists; not overwriting it")
    name = args.name or default_project_name(here)
    agent = getattr(args, "agent", None)
    text = Template(template("hatch.toml")).safe_substitute(name=name, agents=agents_block(agent))
    parse_config(text, config)  # refuses a bad --name before anything is written
    (here / "specs").mkdir(exist_ok=True)
    (here / "prompts").mkdir(exist_ok=True)
    created = [config]
    config.write_text(text, encoding="utf-8")
    for rel, src in (
        ("specs/EXAMPLE-001.md", "example_spec.md"),
        ("prompts/factory.md", "factory.md"),
        ("prompts/qa.md", "qa.md"),
    ):
        target = here / rel
        if not target.exists():
            target.write_text(template(src), encoding="utf-8")
            created.append(target)
    exclude_hatch_paths(here)
    for path in created:
        print(f"created {path.relative_to(here)}")
    print("added .hatch/ to .git/info/exclude")
    if agent:
        preset = agents.get(agent)
        print(f"agents: {preset.title} {preset.version} (preset = {agent!r}; see docs/agents.md)")
        print("next: `hatchctl doctor` (the CLI, its flags, credentials), edit specs/, `hatchctl`")
    else:
        print("next: edit specs/, then `hatchctl validate` and `hatchctl`")
    return 0


def _toml(value: object) -> str:
    """A TOML value for a string, a list of strings or a table of strings."""
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{k} = {_toml(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    raise TypeError(f"no TOML for {value!r}")


def agents_block(agent: str | None) -> str:
    """The ``[agents.*]`` tables of a new hatch.toml: the simulated agent, or ``preset =``
    with what the preset fills in shown as comments (set a key to override it)."""
    if not agent or agent == agents.DEFAULT:
        return template("agents_command.toml")
    preset = agents.get(agent)
    lines = []
    for role in ("factory", "qa"):
        problem = preset.role_problem(role)
        if problem is not None:  # aider cannot give a QA verdict: the simulated QA, said so
            lines += [
                f"[agents.{role}]",
                f"# {problem}.",
                '# Set preset = "claude" | "codex" | "gemini" here for a real review; until',
                "# then the simulated agent re-runs the acceptance command and checks the diff.",
                f'prompt_template = "prompts/{role}.md"',
                "",
            ]
            continue
        lines += [
            f"[agents.{role}]",
            f"preset = {_toml(agent)}",
            f'prompt_template = "prompts/{role}.md"',
        ]
        if role == "factory":
            lines.append(
                f"# {preset.title} {preset.version}; the preset fills in (a key set here wins,"
            )
            lines.append("# env is merged variable by variable):")
            lines += [f"# {key} = {_toml(value)}" for key, value in preset.defaults().items()]
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def scripts(args: argparse.Namespace) -> int:
    if args.eject:
        dest = args.eject if args.eject.is_absolute() else start_dir(args) / args.eject
        for path in eject(dest):
            print(path)
        print(f'to use them, set scripts_dir = "{dest}" under [project] in hatch.toml')
        return 0
    root = builtin_root()
    for name in SCRIPT_NAMES:
        path = root / name
        lines = path.read_text(encoding="utf-8").splitlines()
        purpose = next((ln[2:] for ln in lines[1:] if ln.startswith("# ")), "")
        print(f"{name:<28} {purpose}")
    print(f"(in {root})")
    return 0
