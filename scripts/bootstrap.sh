#!/usr/bin/env bash
# Create .venv with the pinned dependency set (uv in a private tools venv; falls back to pip).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
UV_VERSION=0.13.9
if [ ! -x .tools/bin/uv ]; then
  "$PY" -m venv .tools
  PIP_CONFIG_FILE=/dev/null .tools/bin/pip install -q --disable-pip-version-check "uv==${UV_VERSION}"
fi
# This script is part of the stamp: a venv made by an older version of it is brought up to date.
stamp=.venv/.installed-$(sha1sum requirements.lock pyproject.toml scripts/bootstrap.sh | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ]; then
  .tools/bin/uv venv -q --allow-existing --python "$PY" .venv
  # Bytecode now rather than on each command's first import: uv skips it by default, and where
  # PYTHONDONTWRITEBYTECODE is set every `audiapro` call recompiled SQLAlchemy & co. (about 2 s).
  .tools/bin/uv pip install -q --compile-bytecode --python .venv/bin/python -r requirements.lock
  .tools/bin/uv pip install -q --python .venv/bin/python --no-deps -e .
  rm -f .venv/.installed-*
  touch "$stamp"
fi
