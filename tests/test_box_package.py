"""A venue box installs the product, not the simulated devices."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from setuptools.config.setupcfg import read_configuration

ROOT = Path(__file__).resolve().parents[1]


def test_the_installed_package_holds_every_product_package_and_no_simulator():
    packages = read_configuration(str(ROOT / "setup.cfg"))["options"]["packages"]
    assert not [p for p in packages if p.split(".")[0] == "simulators"]
    for needed in ("edge_agent", "edge_agent.area", "beerflow_edge", "drivers.modbus", "rules"):
        assert needed in packages


def test_without_the_simulators_the_demo_says_why_and_changes_nothing(tmp_path):
    # As on a box: the checkout (where simulators/ lives) is not on the path.
    code = (
        "import sys\n"
        f"sys.path = [p for p in sys.path if p not in ('', {str(ROOT)!r})]\n"
        "from beerflow_edge.cli import main\n"
        "sys.exit(main(['demo', '--dir', 'venue']))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 1, res.stderr
    assert "simulated devices are not installed here" in res.stderr
    assert "make demo" in res.stderr
    assert not (tmp_path / "venue").exists()
