"""hatchctl: a terminal control room for a team of coding agents."""

__version__ = "0.1.0"
