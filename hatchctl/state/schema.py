"""SQLite schema: tables, the transition table and the triggers that enforce it."""

from __future__ import annotations

import sqlite3

from hatchctl.state.transitions import RUN_TRANSITIONS, TASK_TRANSITIONS

SCHEMA_VERSION = 3

TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS transitions (
    machine TEXT NOT NULL, from_state TEXT NOT NULL, to_state TEXT NOT NULL,
    PRIMARY KEY (machine, from_state, to_state)
);
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'pending',
    phase TEXT,
    priority INTEGER NOT NULL DEFAULT 50,
    depends_on TEXT NOT NULL DEFAULT '[]',
    files TEXT NOT NULL DEFAULT '[]',
    spec_path TEXT NOT NULL DEFAULT '',
    spec_digest TEXT NOT NULL DEFAULT '',
    pending_digest TEXT,
    iteration INTEGER NOT NULL DEFAULT 0,
    attempt INTEGER NOT NULL DEFAULT 0,
    strikes INTEGER NOT NULL DEFAULT 0,
    restarts INTEGER NOT NULL DEFAULT 0,
    restart_window_start REAL,
    next_retry_at REAL,
    resume_phase TEXT,
    branch TEXT,
    worktree TEXT,
    base_sha TEXT,
    pane_id TEXT,
    failure_class TEXT,
    last_error TEXT,
    errors TEXT NOT NULL DEFAULT '[]',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    version INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL REFERENCES tasks(id),
    role TEXT NOT NULL,
    iteration INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'starting',
    window_name TEXT NOT NULL,
    pane_id TEXT,
    pane_pid INTEGER,
    log_path TEXT NOT NULL,
    stop_path TEXT NOT NULL,
    summary_path TEXT NOT NULL,
    prompt_path TEXT NOT NULL,
    started_at REAL NOT NULL,
    running_at REAL,
    ended_at REAL,
    exit_code INTEGER,
    reason TEXT,
    stop_seen TEXT,
    summary_requests INTEGER NOT NULL DEFAULT 0,
    prompt_sent INTEGER NOT NULL DEFAULT 0,
    last_request_at REAL,
    last_activity_at REAL,
    log_size INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 0,
    metrics TEXT NOT NULL DEFAULT '{}',
    transcript_path TEXT,
    waiting_since REAL,
    waiting_reason TEXT,
    host TEXT,
    UNIQUE (task_id, role, iteration, attempt)
);
CREATE INDEX IF NOT EXISTS runs_task ON runs(task_id);
CREATE INDEX IF NOT EXISTS runs_state ON runs(state);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    task_id TEXT,
    run_id INTEGER,
    kind TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT,
    data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS events_task ON events(task_id);
CREATE TABLE IF NOT EXISTS locks (
    path TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    acquired_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    task_id TEXT,
    args TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'pending',
    result TEXT,
    done_at REAL,
    client_pid INTEGER
);
"""

GUARDS = """
CREATE TRIGGER IF NOT EXISTS task_state_guard BEFORE UPDATE OF state ON tasks
WHEN OLD.state IS NOT NEW.state AND NOT EXISTS (
    SELECT 1 FROM transitions
    WHERE machine = 'task' AND from_state = OLD.state AND to_state = NEW.state)
BEGIN SELECT RAISE(ABORT, 'invalid task transition'); END;

CREATE TRIGGER IF NOT EXISTS task_insert_guard BEFORE INSERT ON tasks
WHEN NEW.state IS NOT 'pending'
BEGIN SELECT RAISE(ABORT, 'a new task must start pending'); END;

CREATE TRIGGER IF NOT EXISTS run_state_guard BEFORE UPDATE OF state ON runs
WHEN OLD.state IS NOT NEW.state AND NOT EXISTS (
    SELECT 1 FROM transitions
    WHERE machine = 'run' AND from_state = OLD.state AND to_state = NEW.state)
BEGIN SELECT RAISE(ABORT, 'invalid run transition'); END;

CREATE TRIGGER IF NOT EXISTS run_insert_guard BEFORE INSERT ON runs
WHEN NEW.state IS NOT 'starting'
BEGIN SELECT RAISE(ABORT, 'a new run must start in state starting'); END;

CREATE TRIGGER IF NOT EXISTS transitions_no_insert BEFORE INSERT ON transitions
BEGIN SELECT RAISE(ABORT, 'the transition table is read-only'); END;
CREATE TRIGGER IF NOT EXISTS transitions_no_update BEFORE UPDATE ON transitions
BEGIN SELECT RAISE(ABORT, 'the transition table is read-only'); END;
CREATE TRIGGER IF NOT EXISTS transitions_no_delete BEFORE DELETE ON transitions
BEGIN SELECT RAISE(ABORT, 'the transition table is read-only'); END;
"""


def statements(script: str) -> list[str]:
    """Split a script into complete statements (trigger bodies keep their inner semicolons)."""
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    return [s for s in out if s]


# columns added after version 1, with their definitions: added to an older database on open
ADDED_COLUMNS = {
    "tasks": {"held": "INTEGER NOT NULL DEFAULT 0", "feature": "TEXT"},
    "runs": {
        "metrics": "TEXT NOT NULL DEFAULT '{}'",
        "transcript_path": "TEXT",
        "waiting_since": "REAL",
        "waiting_reason": "TEXT",
        "host": "TEXT",  # the [hosts.NAME] the run was placed on; NULL: this machine
    },
}


def _migrate(conn: sqlite3.Connection) -> None:
    for table, columns in ADDED_COLUMNS.items():
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        for name, definition in columns.items():
            if name not in have:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {definition}")


def is_current(conn: sqlite3.Connection) -> bool:
    """The database was installed by this schema version (no write needed to open it: a
    client such as `status` works on a full disk)."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError:
        return False
    if row is None or row[0] != str(SCHEMA_VERSION):
        return False
    # a column added within this version (runs.host) is added by install() on open
    have = {r[1] for r in conn.execute("PRAGMA table_info(runs)")}
    return set(ADDED_COLUMNS["runs"]) <= have


def install(conn: sqlite3.Connection) -> None:
    """Create tables, fill the transition table once, then install the guards (idempotent).

    Runs inside the caller's transaction (no executescript, which would commit).
    """
    for stmt in statements(TABLES):
        conn.execute(stmt)
    has_guard = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='trigger' AND name='transitions_no_insert'"
    ).fetchone()
    rows = [("task", a, b) for a, b in sorted(TASK_TRANSITIONS)]
    rows += [("run", a, b) for a, b in sorted(RUN_TRANSITIONS)]
    have = set(conn.execute("SELECT machine, from_state, to_state FROM transitions"))
    if not has_guard or not set(rows) <= have:
        # a database from an older hatchctl lacks newer transitions: the read-only guard is
        # lifted for this one insert (inside the caller's transaction) and put back below
        conn.execute("DROP TRIGGER IF EXISTS transitions_no_insert")
        conn.executemany("INSERT OR IGNORE INTO transitions VALUES (?, ?, ?)", rows)
    for stmt in statements(GUARDS):
        conn.execute(stmt)
    _migrate(conn)
    conn.execute(
        "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)",
        (str(SCHEMA_VERSION),),
    )
