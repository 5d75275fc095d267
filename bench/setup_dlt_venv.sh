#!/usr/bin/env bash
# Create (once) the benchmark-only virtualenv holding dlt for bench/import_bench.py's comparator.
# Prints the environment's python on stdout; installs nothing into the product's .venv.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.dlt-venv"
reqs="$here/dlt-requirements.txt"
stamp="$venv/.requirements"
uv="$here/../.tools/bin/uv"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$reqs" "$stamp"; then
  rm -rf "$venv"
  if [ -x "$uv" ]; then
    "$uv" venv -q --python 3.11 "$venv" >&2
    VIRTUAL_ENV="$venv" "$uv" pip install -q -r "$reqs" >&2
  else
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q -r "$reqs" >&2
  fi
  cp "$reqs" "$stamp"
fi
echo "$venv/bin/python"
