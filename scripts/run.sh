#!/usr/bin/env bash
# Set up, migrate, seed the demo on first start, and run the web server, an RQ
# worker and the scheduler together. Ctrl-C stops them all.
# With no settings: SQLite and an embedded Redis under instance/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m annotate serve "$@"
