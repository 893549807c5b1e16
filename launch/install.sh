#!/usr/bin/env bash
# Installs what pgen needs on a fresh Debian/Ubuntu machine: the Fashion-MNIST files
# (for offline preparation) and a virtual environment at .venv with pgen and its tests.
#   bash launch/install.sh
#   bash launch/install.sh --with-browser   # and Chromium, which the review page's tests drive
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get install -y -q "$@" || { $sudo apt-get update -q && $sudo apt-get install -y -q "$@"; }
}
[ -d /usr/share/datasets/fashion-mnist ] || apt_install dataset-fashion-mnist
if [ "${1:-}" = "--with-browser" ]; then
  command -v chromedriver >/dev/null || apt_install chromium chromium-driver
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test]'
