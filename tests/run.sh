#!/usr/bin/env bash
# Installs everything the tests need (apt and pip) and runs them. CI runs exactly this.
#   bash tests/run.sh [pytest args]        # every test
#   bash tests/run.sh -m "not slow"        # the fast suite
# With CI=true and no arguments it runs the fast suite: the `slow` tests (runs of minutes)
# are run by hand before a change lands.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/install.sh --with-browser
if [ "${CI:-}" = "true" ] && [ $# -eq 0 ]; then
  set -- -m "not slow"
fi
# One worker per core, at most 4 (each holds JAX, TensorFlow and a dataset); a test file
# stays on one worker, so its module fixtures are made once; files start in conftest.py's
# order (the longest first, by tests/durations.json), not xdist's (the most tests first).
# Refresh the durations after adding or changing a long test:
#   bash tests/run.sh -m "not slow" --record-durations
workers=$(nproc)
[ "$workers" -le 4 ] || workers=4
.venv/bin/python -m pytest -q -p no:cacheprovider -n "$workers" --dist loadfile \
  --no-loadscope-reorder "$@"
