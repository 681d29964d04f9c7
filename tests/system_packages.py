"""Programs the tests need from Debian's packages (Chromium now; servers later).

Outside CI a missing program skips the tests that need it; in CI (CI=true) it is installed with apt-get,
and a failed install fails those tests: CI never silently skips a browser test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
APT_TIMEOUT_S = 900


def _apt_get(*args: str) -> subprocess.CompletedProcess:
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    return subprocess.run(  # noqa: S603 - fixed arguments, our own package names
        [*sudo, "apt-get", *args],
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        capture_output=True,
        text=True,
        timeout=APT_TIMEOUT_S,
        check=False,
    )


def require_program(program: str, package: str) -> Path:
    """The program's path; installs `package` in CI when missing, else skips (or fails in CI)."""
    found = shutil.which(program)
    if found:
        return Path(found)
    if not IN_CI:
        pytest.skip(f"{program} is not installed (apt-get install {package}); CI installs it")
    update = _apt_get("update", "-qq")
    install = _apt_get("install", "-y", "-qq", package)
    found = shutil.which(program)
    if install.returncode != 0 or not found:
        pytest.fail(
            f"CI could not install {package} for {program}: apt-get update exit {update.returncode}, "
            f"install exit {install.returncode}\n{install.stderr[-2000:]}"
        )
    return Path(found)
