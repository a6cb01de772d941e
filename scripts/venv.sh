#!/usr/bin/env bash
# Create .venv and install the project with its extras; re-run only when setup.cfg changes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    echo "venv: Python >= 3.11 is required ($("$PY" --version 2>&1) found)" >&2
    exit 1
fi
STAMP=.venv/.installed-$(cat setup.cfg pyproject.toml | sha1sum | cut -c1-12)
if [ -f "$STAMP" ]; then
    exit 0
fi
if [ ! -x .venv/bin/python ]; then
    if ! "$PY" -m venv .venv 2>/dev/null; then
        echo "venv: '$PY -m venv' failed; on Debian: apt-get install -y python3-venv" >&2
        exit 1
    fi
fi
echo "venv: installing beerflow-edge and its dependencies into .venv (first run takes a minute)"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[all,dev]"
# The checkout itself on the venv's path: simulators/ (not part of the installed package: a
# box never ships it), tests/ and bench/ import from any directory, as they did in-tree.
SITE=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
pwd > "$SITE/beerflow-checkout.pth"
rm -f .venv/.installed-*
touch "$STAMP"
