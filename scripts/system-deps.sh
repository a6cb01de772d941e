#!/usr/bin/env bash
# Install the Debian packages the tests and demo use, when missing.
# As root it installs them with apt; otherwise it says exactly what to run.
set -euo pipefail
# systemd: systemd-analyze verifies the unit files; mmdebstrap: a throwaway root the .deb
# installs into in its test.
PKGS=(mosquitto socat dbus librsvg2-bin tmux libdbus-1-dev libglib2.0-dev postgresql systemd mmdebstrap)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: missing ${missing[*]} and this is not a Debian-like system; install them by hand." >&2
    exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "system-deps: missing Debian packages: ${missing[*]}" >&2
    echo "system-deps: run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
