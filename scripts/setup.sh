#!/usr/bin/env bash
# Set up (or bring up to date) the environment: .venv with the pinned Python
# packages and static/node_modules with the front-end packages from npm.
# Usage: scripts/setup.sh [--dev]   (--dev adds the test tools)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
requirements=requirements.txt
[[ "${1:-}" == "--dev" ]] && requirements=requirements-dev.txt

if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
# Skip pip when nothing changed since the last install, so repeated runs are quick.
stamp=.venv/.installed-$(cat "$requirements" requirements.txt constraints.txt | sha256sum | cut -c1-16)
if [[ ! -f "$stamp" ]]; then
  echo "setup: installing Python packages from $requirements"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r "$requirements" -c constraints.txt
  touch "$stamp"
fi

if ! command -v npm >/dev/null; then
  echo "setup: npm is missing; install Node.js and npm (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
if [[ ! -f static/node_modules/@heartexlabs/label-studio/build/static/js/main.js \
      || static/package-lock.json -nt static/node_modules/.package-lock.json ]]; then
  echo "setup: installing front-end packages from npm"
  (cd static && npm ci --no-audit --no-fund --loglevel=error)
fi
