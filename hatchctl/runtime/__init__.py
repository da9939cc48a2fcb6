"""Adapters to the outside world: processes, tmux, scripts, git, the file watcher, the sim agent."""
