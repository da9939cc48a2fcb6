"""The project's secret (``.hatch/secret``, 0600) and the per-run tokens derived from it.

A run's token is given to that run's agent alone (``HATCH_RUN_TOKEN`` in its environment); its
``.stop`` files carry it, so a stop signal forged by another task's agent is recognised and
ignored. The secret itself is never shown to an agent (a sandbox hides ``.hatch/``).
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from hatchctl.errors import HatchError

_SIZE = 32


def load_or_create(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(_SIZE))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise HatchError(f"cannot read the project secret {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        data = f.read(_SIZE + 1)
    if len(data) != _SIZE:
        raise HatchError(f"the project secret {path} is damaged; delete it to make a new one")
    return data


def run_token(secret: bytes, run_id: int) -> str:
    return hmac.new(secret, f"run:{run_id}".encode(), "sha256").hexdigest()[:32]


def token_ok(secret: bytes, run_id: int, token: object) -> bool:
    return isinstance(token, str) and hmac.compare_digest(run_token(secret, run_id), token)
