"""The model of the world: specs, summaries, transitions and the SQLite store.

Pure: imports neither tmux adapters nor Textual (``tests/unit/test_import_hygiene.py`` checks).
"""
