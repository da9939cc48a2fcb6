"""Command implementations called by cli.py. Each takes the parsed arguments, returns an exit code."""
