"""The marketplace package: `python -m build` makes an sdist and a wheel with everything the app needs, and
the wheel installed into a fresh virtual environment passes `backstride manifest check` and runs the demo."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

from plugin import __version__
from tests.system_packages import IN_CI

ROOT = Path(__file__).resolve().parents[2]
# What the app reads at run time besides its modules: a package missing one of them installs but fails.
PACKAGE_DATA = (
    "plugin/manifest.json",
    "plugin/manifest.schema.json",
    "plugin/sandbox/seed/seed.json",
    "plugin/web/templates/settings.html",
    "plugin/web/templates/landing.html",
    "plugin/web/static/style.css",
    "plugin/web/static/icon-512.png",
    "plugin/web/static/connect-with-strava.svg",
    "plugin/sandbox/templates/consent.html",
)


def run(*args: str | Path, cwd: Path, timeout: float = 600, env: dict[str, str] | None = None):
    return subprocess.run(  # noqa: S603 - our own interpreter and tools
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    built = run(sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", out, ROOT, cwd=ROOT)
    if built.returncode != 0:
        # Build isolation fetches setuptools from the package registry.
        message = f"python -m build failed:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return out


def test_wheel_and_sdist_carry_templates_static_files_schema_manifest_and_seed(dist):
    wheel = next(dist.glob(f"backstride-{__version__}-py3-none-any.whl"))
    sdist = next(dist.glob(f"backstride-{__version__}.tar.gz"))
    wheel_names = set(zipfile.ZipFile(wheel).namelist())
    with tarfile.open(sdist) as archive:
        sdist_names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for name in PACKAGE_DATA:
        assert name in wheel_names, f"{name} missing from the wheel"
        assert name in sdist_names, f"{name} missing from the sdist"
    # The packaged manifest is the top-level one (a copy, not a dangling link).
    packaged = zipfile.ZipFile(wheel).read("plugin/manifest.json")
    assert packaged == (ROOT / "manifest.json").read_bytes()
    assert not any(name.startswith("tests/") for name in wheel_names)


def test_the_wheel_in_a_fresh_venv_checks_its_manifest_and_runs_the_demo(dist, tmp_path):
    wheel = next(dist.glob("backstride-*.whl"))
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    # No byte-compiling of every dependency: the run below compiles what it imports anyway.
    installed = run(python, "-m", "pip", "install", "-q", "--no-compile", wheel, cwd=tmp_path)
    if installed.returncode != 0:
        message = f"pip install of the wheel failed:\n{installed.stderr[-3000:]}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    backstride = env_dir / "bin" / "backstride"
    # A directory with nothing of the checkout in it: everything must come from the installed wheel.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKSTRIDE_", "STRAVA_", "PYTHON"))}

    checked = run(backstride, "manifest", "check", cwd=elsewhere, env=env)
    assert checked.returncode == 0, checked.stderr
    assert "valid against the schema and the app" in checked.stdout
    assert str(env_dir) in checked.stdout  # the wheel's own copy, not the checkout's

    demo = run(backstride, "demo", "--once", cwd=elsewhere, env=env, timeout=180)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert demo.stdout.count("⟲ Backstride") == 3
    assert "Lunch ride (Ride): no note" in demo.stdout
