"""The demo's own secrets: made at random on first use and kept beside its database.

``warenhaus demo`` runs in production mode (gunicorn and a worker), which refuses the public
values built into the settings (:mod:`warenhaus.core.checks`). So the demo makes each secret the
environment does not give, keeps it in ``var/demo-secrets.json`` (readable by its owner only,
beside the SQLite file whose voucher digests depend on it), and hands it to its processes.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from .checks import DEMO_SECRET_PREFIX, SECRETS

FILE_NAME = "demo-secrets.json"


def _given(name: str) -> str:
    value = os.environ.get(name, "")
    return "" if value.startswith(DEMO_SECRET_PREFIX) else value


def ensure(var_dir: Path) -> dict[str, str]:
    """Every secret the environment does not set, from the demo's file (made if missing);
    also put into ``os.environ`` for the processes the demo starts. Returns what was set."""
    path = Path(var_dir) / FILE_NAME
    try:
        kept = json.loads(path.read_text())
    except (OSError, ValueError):
        kept = {}
    missing = [name for name in SECRETS if not _given(name)]
    made = {
        name: kept[name]
        if isinstance(kept.get(name), str) and len(kept[name]) >= 32
        else secrets.token_urlsafe(48)
        for name in missing
    }
    if made and any(kept.get(name) != value for name, value in made.items()):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({**kept, **made}, out, indent=2)
    os.environ.update(made)
    return made
