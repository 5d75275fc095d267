#!/usr/bin/env bash
# Check `make up` / `make down` from a clean clone: the stack comes up, `audiapro status` turns healthy
# (a poll completed through the worker), and after `make down` no process of the clone is left.
#
#   scripts/check-up-down.sh           # git clone of this checkout's HEAD into a temp dir
#   scripts/check-up-down.sh --copy    # copy of the working tree instead (uncommitted changes included)
#
# Uses free loopback ports (not 4200), so it can run next to a developer's own `make up`.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/audiapro-updown.XXXXXX)
REPO="$WORK/repo"
HEALTHY_TIMEOUT=${HEALTHY_TIMEOUT:-300}

leftovers() {
  # Processes started from the clone (command line or working directory inside it), except this
  # script and its own subshells; zombies have exited already and are skipped.
  (cd / && python3 - "$REPO" <<'PY'
import os, sys
repo, pid, mine = sys.argv[1], os.getpid(), set()
while pid > 1:
    mine.add(pid)
    with open(f"/proc/{pid}/stat") as stat:
        pid = int(stat.read().rsplit(")", 1)[1].split()[1])
for name in filter(str.isdigit, os.listdir("/proc")):
    if int(name) in mine:
        continue
    try:
        with open(f"/proc/{name}/stat") as stat:
            if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                continue
        with open(f"/proc/{name}/cmdline", "rb") as cmdline:
            cmd = cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
        cwd = os.readlink(f"/proc/{name}/cwd")
    except OSError:
        continue
    if repo in cmd or cwd.startswith(repo):
        print(name, cmd[:160])
PY
  )
}

cleanup() {
  local rc=$?
  if [ -d "$REPO" ]; then (cd "$REPO" && make -s down >/dev/null 2>&1) || true; fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT

if [ "${1:-}" = "--copy" ]; then
  mkdir -p "$REPO"
  tar -C "$SRC" --exclude=./.git --exclude=./.venv --exclude=./.tools --exclude=./.prefect \
      --exclude=./.audiapro --exclude='./*.egg-info' --exclude=./.mypy_cache --exclude=./.ruff_cache \
      --exclude=./.pytest_cache --exclude='*/__pycache__' -cf - . | tar -C "$REPO" -xf -
else
  git clone -q "$SRC" "$REPO"
fi
cd "$REPO"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
export AUDIAPRO_PREFECT_PORT=${AUDIAPRO_PREFECT_PORT:-$(free_port)}
export AUDIAPRO_SIM_PORT=${AUDIAPRO_SIM_PORT:-$(free_port)}
export AUDIAPRO_API_PORT=${AUDIAPRO_API_PORT:-$(free_port)}
unset PREFECT_API_URL AUDIAPRO_DATABASE_URL PREFECT_API_DATABASE_CONNECTION_URL AUDIAPRO_RUN_DIR PREFECT_HOME
# A fresh state home of the check's own (never the user's ~/.audiapro); Prefect's lives inside it.
export AUDIAPRO_HOME="$WORK/home"

start=$(date +%s)
make up
echo "check: make up took $(( $(date +%s) - start ))s"

# No PREFECT_API_URL: the CLI finds the stack through the home's run directory, as a user's would.
deadline=$(( $(date +%s) + HEALTHY_TIMEOUT ))
until .venv/bin/audiapro status >"$WORK/status.txt" 2>&1; do
  if [ "$(date +%s)" -gt "$deadline" ]; then
    cat "$WORK/status.txt"; echo "check: FAILED: not healthy after ${HEALTHY_TIMEOUT}s"; exit 1
  fi
  sleep 5
done
cat "$WORK/status.txt"
echo "check: healthy (a poll completed) $(( $(date +%s) - start ))s after make up started"

# The demo PBX pushes each CDR as it ends (about one call a minute): push-fed rows must appear.
pushed() {
  .venv/bin/python -c 'from audiapro.home import use_home; use_home()
from audiapro.warehouse import get_engine; from audiapro.warehouse.push import push_status_counts
print(push_status_counts(get_engine()).get("loaded", 0))'
}
deadline=$(( $(date +%s) + HEALTHY_TIMEOUT ))
until [ "$(pushed 2>/dev/null || echo 0)" -gt 0 ]; do
  if [ "$(date +%s)" -gt "$deadline" ]; then
    tail -20 "$AUDIAPRO_HOME/run/pusher.log" "$AUDIAPRO_HOME/run/api.log" || true
    echo "check: FAILED: no pushed CDR loaded after ${HEALTHY_TIMEOUT}s"; exit 1
  fi
  sleep 5
done
echo "check: push-fed rows: $(pushed) pushed bodies loaded"

leftovers >"$WORK/during.txt"
echo "check: processes of the clone while up:"; cat "$WORK/during.txt"
start=$(date +%s)
make down
echo "check: make down took $(( $(date +%s) - start ))s"
left=$(leftovers)
if [ -n "$left" ]; then
  echo "check: FAILED: processes left behind:"; echo "$left"
  exit 1
fi
echo "check: OK: $(wc -l <"$WORK/during.txt") processes were running, none left after make down"
