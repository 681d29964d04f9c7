"""The store under concurrent processes, as a fleet starting together meets it."""

from __future__ import annotations

import subprocess
import sys

from cryptography.fernet import Fernet


def test_processes_creating_the_schema_together_all_succeed(tmp_path):
    url = f"sqlite:///{tmp_path}/race.db"
    code = (
        f"from plugin.store import Store; Store({url!r}, {Fernet.generate_key().decode()!r}).create_schema()"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(8)
    ]
    failures = [p.stderr.read() for p in processes if p.wait() != 0]
    assert failures == []
