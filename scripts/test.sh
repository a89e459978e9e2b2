#!/usr/bin/env bash
# Set up the same environment plus the test tools, then run every test.
# TEST_DATABASE_URL / TEST_REDIS_URL point the suite at real servers;
# without them it uses SQLite and an embedded Redis. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
exec .venv/bin/python -m pytest "$@"
