#!/usr/bin/env bash
# Installs everything the tests need (apt and pip) and runs them. CI runs exactly this.
#   bash tests/run.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/install.sh
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
