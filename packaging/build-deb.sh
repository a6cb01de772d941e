#!/usr/bin/env bash
# Build the venue box's Debian package with dpkg-deb (no Docker, no debhelper):
#   packaging/build-deb.sh [--out DIR] [--version V] [--ml] [--wheels DIR]
# The package holds the application in its own venv at /opt/beerflow/releases/VERSION, built
# here with the target's Python (/usr/bin/python3: build on the Debian release and CPU
# architecture you ship to, e.g. an arm64 Raspberry Pi OS bookworm runner for Pis). It has
# the box's dependencies only (the `box` extra; `--ml` adds onnxruntime) and no pip inside.
# Prints the .deb's path as its last line.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/packaging/build"
VERSION=""
EXTRAS="box"
WHEELS=""
while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT=$2; shift 2 ;;
        --version) VERSION=$2; shift 2 ;;
        --ml) EXTRAS="box,box-ml"; shift ;;
        --wheels) WHEELS=$2; shift 2 ;;
        *) echo "usage: $0 [--out DIR] [--version V] [--ml] [--wheels DIR]" >&2; exit 2 ;;
    esac
done
PY=/usr/bin/python3
[ -x "$PY" ] || { echo "build-deb: $PY missing: the venv must use the target's system Python" >&2; exit 1; }
if [ -z "$VERSION" ]; then
    VERSION=$(sed -n 's/^version = //p' "$ROOT/setup.cfg")
fi
PYVER=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
PYNEXT=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1] + 1}")')
ARCH=$(dpkg --print-architecture)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
STAGE=$(mktemp -d "$OUT/stage.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
PKG="$STAGE/pkg"
REL=/opt/beerflow/releases/$VERSION
SRC="$STAGE/src"
mkdir "$SRC"

echo "build-deb: beerflow-edge $VERSION ($ARCH, python $PYVER, extras $EXTRAS)" >&2
# A clean copy of the tracked tree with the version stamped, so a test build never touches
# the checkout (and local venvs, stores and caches stay out of the package).
git -C "$ROOT" ls-files -z --cached --others --exclude-standard \
    | (cd "$ROOT" && xargs -0 cp --parents -t "$SRC" 2>/dev/null || true)
sed -i "s/^version = .*/version = $VERSION/" "$SRC/setup.cfg"
sed -i "s/^__version__ = .*/__version__ = \"$VERSION\"/" "$SRC/edge_agent/__init__.py"

# The venv is built at its final path inside the staging root, then its absolute paths are
# rewritten (a venv is not relocatable; only shebangs and activate scripts name the path).
# Dependencies are built once into a wheelhouse beside the output and reused by later builds.
WHEELS=${WHEELS:-$OUT/wheels}
mkdir -p "$WHEELS"
rm -f "$WHEELS"/beerflow_edge-*.whl
"$PY" -m venv "$PKG$REL"
PIP=("$PKG$REL/bin/python" -m pip --quiet --disable-pip-version-check)
# Offline from the wheelhouse first; the package index only for what it lacks.
wheels() {
    "${PIP[@]}" wheel --no-index --find-links "$WHEELS" --wheel-dir "$WHEELS" "$@" 2>/dev/null \
        || "${PIP[@]}" wheel --find-links "$WHEELS" --wheel-dir "$WHEELS" "$@" >&2
}
wheels "setuptools>=68" wheel
"${PIP[@]}" install --no-index --find-links "$WHEELS" "setuptools>=68" wheel >&2
wheels --no-build-isolation "$SRC[$EXTRAS]"
"${PIP[@]}" install --no-index --find-links "$WHEELS" --no-compile "beerflow-edge[$EXTRAS]==$VERSION" >&2
"$PKG$REL/bin/python" -m pip uninstall --quiet --yes pip setuptools wheel >&2 2>/dev/null || true
rm -rf "$PKG$REL"/bin/{activate*,Activate*,pip*}
grep -rlI --null "$PKG$REL" "$PKG$REL" | xargs -0 -r sed -i "s#$PKG$REL#$REL#g"
find "$PKG$REL" -name __pycache__ -prune -exec rm -rf {} +
# Versioned for the rollback; the postinst points /opt/beerflow/current at it.

install -D -m 0644 "$ROOT/packaging/systemd/beerflow-agent.service" "$PKG/lib/systemd/system/beerflow-agent.service"
install -D -m 0644 "$ROOT/packaging/systemd/beerflow-kiosk.service" "$PKG/lib/systemd/system/beerflow-kiosk.service"
install -D -m 0644 "$ROOT/packaging/tmpfiles/beerflow.conf" "$PKG/usr/lib/tmpfiles.d/beerflow.conf"
install -D -m 0644 "$ROOT/packaging/udev/61-beerflow-serial.rules" "$PKG/lib/udev/rules.d/61-beerflow-serial.rules"
install -D -m 0644 "$ROOT/packaging/debian/venue.toml" "$PKG/usr/share/beerflow/venue.toml.example"
install -D -m 0644 "$ROOT/docs/install.md" "$PKG/usr/share/doc/beerflow-edge/install.md"
mkdir -p "$PKG/usr/bin"
ln -s /opt/beerflow/current/bin/beerflow-edge "$PKG/usr/bin/beerflow-edge"

mkdir -p "$PKG/DEBIAN"
SIZE_KB=$(du -sk --exclude=DEBIAN "$PKG" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$SIZE_KB/" \
    -e "s/@PYVER@/$PYVER/" -e "s/@PYNEXT@/$PYNEXT/" \
    "$ROOT/packaging/debian/control" > "$PKG/DEBIAN/control"
for s in preinst postinst prerm postrm; do
    sed "s/@VERSION@/$VERSION/" "$ROOT/packaging/debian/$s" > "$PKG/DEBIAN/$s"
    chmod 0755 "$PKG/DEBIAN/$s"
done
DEB="$OUT/beerflow-edge_${VERSION}_${ARCH}.deb"
# zstd: a hundred times faster to build than xz here, for a third more bytes; dpkg reads it
# since Debian 12.
dpkg-deb --root-owner-group -Zzstd --build "$PKG" "$DEB" >&2
echo "build-deb: installed size $((SIZE_KB / 1024)) MiB, package $(( $(stat -c %s "$DEB") / 1024 / 1024 )) MiB" >&2
echo "$DEB"
