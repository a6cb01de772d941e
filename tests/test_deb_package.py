"""The venue box's .deb, built by packaging/build-deb.sh and installed into a throwaway Debian
root (mmdebstrap, cached as a tarball): users and directories, the box's dependencies only,
the installed units verified in that root, the real agent run inside it, an upgrade that keeps
the data, a failed upgrade rolled back, removal that keeps data, purge that does not.

Needs root (dpkg chroots to run the maintainer scripts) and, the first time, the network (the
base system; later runs reuse ~/.cache/beerflow-test). The wheelhouse is cached there too.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("BEERFLOW_TEST_CACHE", Path.home() / ".cache" / "beerflow-test"))
BASE_TAR = CACHE / "bookworm-box.tar"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("mmdebstrap") or not shutil.which("dpkg-deb"),
    reason="needs root, mmdebstrap and dpkg-deb (scripts/system-deps.sh installs them)",
)


def run(
    *cmd: str | Path, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{cmd} -> {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


@pytest.fixture(scope="module")
def debs(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("debs")
    built = {}
    for version in ("0.1.0", "0.1.1"):
        r = run(ROOT / "packaging" / "build-deb.sh", "--out", out, "--version", version,
                "--wheels", CACHE / "wheels")  # fmt: skip
        built[version] = Path(r.stdout.strip().splitlines()[-1])
        assert (
            built[version].name
            == f"beerflow-edge_{version}_{run('dpkg', '--print-architecture').stdout.strip()}.deb"
        )
    return built


@pytest.fixture
def base_root(tmp_path) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    if not BASE_TAR.exists():
        tmp = BASE_TAR.with_suffix(".partial")
        run("mmdebstrap", "--quiet", "--variant=apt", "--mode=root",
            "--include=python3,adduser,systemd", "bookworm", tmp,
            "http://deb.debian.org/debian", timeout=900)  # fmt: skip
        tmp.rename(BASE_TAR)
    root = tmp_path / "root"
    root.mkdir()
    run("tar", "-C", root, "-xf", BASE_TAR)
    return root


def in_root(root: Path, *cmd: str, user: str | None = None, check: bool = True):
    prefix = ["chroot"] + ([f"--userspec={user}:{user}"] if user else []) + [str(root)]
    return run(*prefix, *cmd, check=check)


def dpkg(root: Path, *args: str | Path, check: bool = True):
    return run("dpkg", f"--root={root}", *args, check=check)


def run_agent_once(root: Path) -> None:
    """The installed agent, as user beerflow in the root, until its API answers; then SIGINT."""
    sock = root / "run" / "beerflow" / "api.sock"
    proc = subprocess.Popen(
        ["chroot", "--userspec=beerflow:beerflow", str(root), "/usr/bin/beerflow-edge", "run"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not sock.exists():
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the installed agent's API never came up"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def events(root: Path) -> list[str]:
    with sqlite3.connect(root / "var" / "lib" / "beerflow" / "beerflow.db") as conn:
        return [k for (k,) in conn.execute("SELECT kind FROM events ORDER BY id")]


def test_install_upgrade_rollback_remove_purge(debs, base_root):
    root = base_root
    # -- install --------------------------------------------------------------------------
    dpkg(root, "-i", debs["0.1.0"])
    assert "beerflow-edge 0.1.0" in in_root(root, "beerflow-edge", "--version").stdout
    groups = in_root(root, "id", "-nG", "beerflow").stdout.split()
    assert {"beerflow", "dialout", "bluetooth"} <= set(groups)
    assert "beerflow" in in_root(root, "id", "-nG", "beerflow-kiosk").stdout.split()
    assert os.readlink(root / "opt/beerflow/current") == "releases/0.1.0"
    st = (root / "var/lib/beerflow").stat()
    assert oct(st.st_mode & 0o777) == "0o700"
    assert oct((root / "etc/beerflow/venue.toml").stat().st_mode & 0o777) == "0o640"
    size_kb = int(in_root(root, "dpkg-query", "-W", "-f=${Installed-Size}", "beerflow-edge").stdout)
    print(f"installed size: {size_kb / 1024:.0f} MiB")
    assert 10_000 < size_kb < 300_000

    # the box's dependencies only: every transport and the terminal; no cloud DB, dev tools, pip
    py = "/opt/beerflow/current/bin/python"
    in_root(root, py, "-c", "import pymodbus, asyncua, bleak, paho.mqtt, textual, cryptography")
    for absent in (
        "sqlalchemy",
        "psycopg",
        "pytest",
        "mypy",
        "ruff",
        "hypothesis",
        "onnxruntime",
        "pip",
    ):
        r = in_root(root, py, "-c", f"import {absent}", check=False)
        assert r.returncode != 0, f"{absent} should not be in the box's venv"

    # units, as installed, verified inside the root (ExecStart paths resolved there)
    for unit in ("beerflow-agent.service", "beerflow-kiosk.service"):
        r = run("systemd-analyze", "verify", f"--root={root}", unit)
        assert r.stderr == "", r.stderr
    assert (root / "lib/udev/rules.d/61-beerflow-serial.rules").exists()
    # tmpfiles.d, applied as systemd-tmpfiles does at boot
    run("systemd-tmpfiles", f"--root={root}", "--create", "beerflow.conf")
    rt = (root / "run/beerflow").stat()
    assert oct(rt.st_mode & 0o777) == "0o750"

    run_agent_once(root)
    before = events(root)
    assert before[-2:] == ["agent.started", "agent.stopped"] or "agent.started" in before

    # -- upgrade: data kept, new release current, old one gone ------------------------------
    dpkg(root, "-i", debs["0.1.1"])
    assert os.readlink(root / "opt/beerflow/current") == "releases/0.1.1"
    assert not (root / "opt/beerflow/releases/0.1.0").exists()
    assert not (root / "opt/beerflow/rollback").exists()
    assert events(root) == before
    run_agent_once(root)
    after_upgrade = events(root)
    assert after_upgrade[: len(before)] == before and len(after_upgrade) > len(before)

    # -- a failing upgrade (here a downgrade whose health check fails) is rolled back --------
    conf = root / "etc/beerflow/venue.toml"
    good = conf.read_text()
    # valid TOML, an invalid venue: the new agent would refuse to start
    conf.write_text(good + '\n[[devices]]\nid = "x"\nprofile = "no-such-profile"\n')
    r = dpkg(root, "-i", debs["0.1.0"], check=False)
    assert r.returncode != 0
    assert "failed its health check; rolling back to 0.1.1" in r.stderr
    assert os.readlink(root / "opt/beerflow/current") == "releases/0.1.1"
    assert "beerflow-edge 0.1.1" in in_root(root, "beerflow-edge", "--version").stdout
    assert events(root) == after_upgrade  # the snapshot taken before the attempt
    kept = list((root / "var/lib/beerflow").glob("beerflow.db.failed-upgrade-*"))
    assert kept, "what the failed attempt left must be kept, not deleted"
    conf.write_text(good)

    # -- remove keeps data and config; purge deletes them and the users ---------------------
    dpkg(root, "--remove", "beerflow-edge")
    assert not (root / "opt/beerflow").exists()
    assert (root / "var/lib/beerflow/beerflow.db").exists() and conf.exists()
    dpkg(root, "--purge", "beerflow-edge")
    assert not (root / "var/lib/beerflow").exists() and not (root / "etc/beerflow").exists()
    assert in_root(root, "getent", "passwd", "beerflow", check=False).returncode != 0
