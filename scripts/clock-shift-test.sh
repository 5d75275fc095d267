#!/usr/bin/env bash
# Run the test suite (or the given pytest arguments) with every process's wall clock shifted by OFFSET.
#
#   scripts/clock-shift-test.sh OFFSET [pytest args...]     e.g.  +7h   -5h   +13h30m   -2d3h
#
# Proves that no test depends on the time of day or the weekday: pick offsets that move the machine's
# UTC time into the early morning, midday and late evening (see docs/testing.md). libfaketime (Debian
# package `faketime`, installed with apt when missing) is preloaded into pytest and everything it
# starts: the throwaway PostgreSQL of scripts/with-postgres.sh, the Prefect test server, the e2e
# Prefect server and workers and their flow-run processes. All of them inherit LD_PRELOAD and
# FAKETIME from the environment, so they share one shifted clock. Only CLOCK_REALTIME is shifted
# (FAKETIME_DONT_FAKE_MONOTONIC=1): timeouts, asyncio and sleeps keep running on the real monotonic
# clock (see below for two libfaketime 0.9.10 quirks that would otherwise slow everything down).
# scripts/faketime/sitecustomize.py (on PYTHONPATH) works around a libfaketime 0.9.10 bug that
# breaks Python's time.sleep in that mode. File modification times (stat) stay unshifted: pytest
# compares them with the clock to expire old temp directories, so this run gets a temp root of its own.
#
# Uses its own PostgreSQL port (AUDIAPRO_TEST_PGPORT, default 55440) so it can run next to `make test`.
# With no pytest arguments it runs what `make pytest` runs: the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: $0 OFFSET [pytest args...]   (OFFSET like +7h, -5h, +13h30m, -2d)" >&2; exit 2; }
[ $# -ge 1 ] || usage
offset=$1
shift
[[ $offset =~ ^[+-]([0-9]+[dhms])+$ ]] || usage

# libfaketime reads one number and one unit; a compound offset like +13h30m becomes seconds.
sign=${offset:0:1}
seconds=0
rest=${offset:1}
while [[ $rest =~ ^([0-9]+)([dhms])(.*)$ ]]; do
  n=$((10#${BASH_REMATCH[1]}))
  case ${BASH_REMATCH[2]} in
    d) seconds=$((seconds + n * 86400)) ;;
    h) seconds=$((seconds + n * 3600)) ;;
    m) seconds=$((seconds + n * 60)) ;;
    s) seconds=$((seconds + n)) ;;
  esac
  rest=${BASH_REMATCH[3]}
done

find_lib() { find /usr/lib /usr/lib64 -name libfaketime.so.1 2>/dev/null | head -1; }
lib=$(find_lib)
if [ -z "$lib" ]; then
  echo "libfaketime not found: installing the Debian package faketime" >&2
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 faketime >/dev/null
  lib=$(find_lib)
  [ -n "$lib" ] || { echo "libfaketime.so.1 still not found after installing faketime" >&2; exit 1; }
fi

[ -x .venv/bin/python ] || scripts/bootstrap.sh
export DO_NOT_TRACK=1 PREFECT_SERVER_ANALYTICS_ENABLED=false
export AUDIAPRO_TEST_PGPORT=${AUDIAPRO_TEST_PGPORT:-55440}
# Not libfaketimeMT: that variant takes a global lock (and masks signals, two syscalls) around every
# clock read to guard state that a fixed relative FAKETIME writes once and then only rewrites with the
# same bytes; with it the e2e flow runs took about twice as long.
export LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}"
export FAKETIME="$sign$seconds"
export FAKETIME_DONT_FAKE_MONOTONIC=1
# On glibc >= 2.30 libfaketime 0.9.10 otherwise "fixes" every monotonic pthread_cond_timedwait deadline
# into the past: Python's GIL waits then time out at once and every thread handoff got ~8x slower.
export FAKETIME_FORCE_MONOTONIC_FIX=0
export PYTHONPATH="$PWD/scripts/faketime${PYTHONPATH:+:$PYTHONPATH}"

PYTEST_DEBUG_TEMPROOT=$(mktemp -d /tmp/audiapro-clock-shift.XXXXXX)
export PYTEST_DEBUG_TEMPROOT
trap 'rm -rf "$PYTEST_DEBUG_TEMPROOT"' EXIT

echo "clock shifted by $offset ($FAKETIME s): tests see $(date -u '+%a %Y-%m-%d %H:%M:%S UTC')" >&2
scripts/with-postgres.sh .venv/bin/python -m pytest -p no:cacheprovider "$@"
