#!/usr/bin/env bash
# CI: the wheel a user would install works on its own. Build it, install it into a clean virtual
# environment (no system site-packages, so the checkout's editable install cannot stand in) and run
# the first commands of the README from a folder outside the checkout, with a fresh HOME and
# database: the shipped device configs and published latencies must come from the wheel.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Build from a copy without build artefacts, so a stale build/ in the checkout cannot leak into the wheel.
mkdir "$work/src"
tar -C "$root" --exclude=./.git --exclude=./build --exclude=./dist --exclude='*.egg-info' \
    --exclude=__pycache__ -cf - . | tar -xf - -C "$work/src"
pip wheel -q --no-deps -w "$work/dist" "$work/src"
python -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$work/dist"/latprof-*.whl

mkdir -p "$work/run/home"
cd "$work/run"
unset LATPROF_DEVICE_CONFIGS LATPROF_CACHE XDG_DATA_HOME
export HOME="$work/run/home" LATPROF_DB="$work/run/latprof.db"
bin="$work/venv/bin"
"$bin/python" -c "import latprof, sys; assert latprof.__file__.startswith(sys.prefix), latprof.__file__"
"$bin/latprof" arch export mobilenet-v2 -o m.tflite
"$bin/latprof" measure m.tflite
"$bin/latprof" calibrate --device pixel1 --from published
"$bin/latprof" predict mnasnet-a1 --device pixel1
echo "wheel check passed in ${SECONDS} s"
