"""A fresh machine: every make target that builds the venv installs the Debian packages first.

dbus-python (for python-dbusmock) is built from source and fails without libdbus-1-dev, so a
target that reaches scripts/venv.sh before scripts/system-deps.sh breaks the quick start on a
machine that has never had those packages. `make -n` prints the recipe without running it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAKEFILE = ROOT / "Makefile"


def _targets_using_venv() -> list[str]:
    text = MAKEFILE.read_text(encoding="utf-8")
    targets = re.findall(r"^([a-z][a-z-]*):(.*)$", text, flags=re.MULTILINE)
    return [name for name, deps in targets if "venv" in deps.split() or name == "venv"]


def _dry_run(target: str) -> list[str]:
    out = subprocess.run(
        ["make", "-n", "-B", "-C", str(ROOT), target],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.splitlines()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_every_venv_target_installs_system_packages_first() -> None:
    targets = _targets_using_venv()
    assert {"venv", "test", "demo", "bench"} <= set(targets)
    for target in targets:
        lines = _dry_run(target)
        venv = [i for i, line in enumerate(lines) if "scripts/venv.sh" in line]
        deps = [i for i, line in enumerate(lines) if "scripts/system-deps.sh" in line]
        assert venv, f"make {target} never builds the venv"
        assert deps, f"make {target} builds the venv without installing system packages"
        assert deps[0] < venv[0], f"make {target} builds the venv before the system packages"


def test_system_packages_cover_the_venv_build() -> None:
    script = (ROOT / "scripts" / "system-deps.sh").read_text(encoding="utf-8")
    packages = re.search(r"PKGS=\(([^)]*)\)", script)
    assert packages is not None
    # The headers dbus-python's meson build asks pkg-config for.
    assert {"libdbus-1-dev", "libglib2.0-dev"} <= set(packages.group(1).split())
