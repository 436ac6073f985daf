# Sourced by scripts/run, scripts/test and scripts/manage: create .venv with Python 3.11+ and install the
# pinned requirements when they changed since the last install.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON_BIN="${PYTHON:-}"
if [ -z "$PYTHON_BIN" ]; then
  for cand in python3.11 python3.12 python3.13 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      PYTHON_BIN=$cand; break
    fi
  done
fi
[ -n "$PYTHON_BIN" ] || { echo "XenX needs Python 3.11 or newer." >&2; exit 1; }
[ -x .venv/bin/python ] || "$PYTHON_BIN" -m venv .venv
# Production settings install the runtime requirements only; otherwise tests and lint too.
if [[ ${DJANGO_SETTINGS_MODULE:-} == *production* ]]; then
  REQ_FILE=${REQ_FILE:-requirements.txt}
else
  REQ_FILE=${REQ_FILE:-requirements-dev.txt}
fi
stamp=".venv/.installed-$(cat requirements.txt "$REQ_FILE" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$REQ_FILE"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
