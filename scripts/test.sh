#!/usr/bin/env bash
# Run jifang's tests: installs what is missing, makes sure PostgreSQL holds the test database, then runs
# pytest (unit and end-to-end tests with real ffmpeg, RTSP, S3 and PostgreSQL on loopback) and ruff.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
./scripts/setup-postgres.sh
.venv/bin/ruff check .
export JIFANG_MODELS_DIR="${JIFANG_MODELS_DIR:-$PWD/.models}"
exec .venv/bin/pytest -n 2 --dist loadfile "$@"
