# hatchctl: every target bootstraps first (tmux, git, .venv), so a fresh clone needs nothing else.
SHELL := /bin/bash
VENV := .venv/bin
DEMO_DIR ?= demo-project

.PHONY: bootstrap demo test check bench clean

bootstrap:
	@tools/bootstrap.sh

demo: bootstrap
	$(VENV)/hatchctl demo --dir $(DEMO_DIR)

# hatchctl's bytecode is compiled first: every supervisor, CLI call and hook the tests start
# imports it, and with PYTHONDONTWRITEBYTECODE set (or a fresh clone) each compiled it again:
# ~30 CPU-s of a ~320 CPU-s suite
test: bootstrap
	$(VENV)/python -m compileall -q hatchctl
	env -u NO_COLOR $(VENV)/python -m pytest -q -n 4 --maxschedchunk 2

check: bootstrap
	$(VENV)/ruff check hatchctl tests bench
	$(VENV)/ruff format --check hatchctl tests bench
	$(VENV)/mypy

# the references (tmuxp, toolong, py-spy) in venvs of their own, first on PATH
bench: bootstrap
	tools/bench_refs.sh
	PATH="$(CURDIR)/tools/bench-venv/bin:$(CURDIR)/tools/toolong-venv/bin:$$PATH" $(VENV)/python bench/run_all.py

clean:
	rm -rf .venv $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
