#!/usr/bin/env bash
# make chaos: the fault and security suite (chaos/), then every fuzz target
# (deploy/fuzz.sh). CHAOS_PROFILE=ci is CI's short profile, full (the
# default) is for people; CHAOS_SEED=N replays a run; FUZZTIME bounds each
# fuzz target (10s under ci, 60s under full). The scenarios' figures land
# in test-output/chaos-figures.md, a row each with its command and seed.
set -euo pipefail
cd "$(dirname "$0")/.."
export CHAOS_PROFILE="${CHAOS_PROFILE:-full}"
case "$CHAOS_PROFILE" in
ci) fuzztime=10s timeout=10m ;;
full) fuzztime=60s timeout=90m ;;
*) echo "CHAOS_PROFILE=$CHAOS_PROFILE: want ci or full" >&2; exit 2 ;;
esac
export FUZZTIME="${FUZZTIME:-$fuzztime}"
GO="${GO:-go}"

# Postgres and Redis for the fuzz targets' packages, and the programs the
# scenarios start servers of their own with (redis-server, initdb, postgres).
deploy/services.sh --with-test-tools
mkdir -p test-output
export CHAOS_REPORT="$PWD/test-output/chaos-figures.md"
: >"$CHAOS_REPORT"
start=$(date +%s)
# The scenarios' own lines as they run; everything, processes' logs
# included, in test-output/chaos.log.
set +e
"$GO" test -count=1 -v -timeout "$timeout" ./chaos/ 2>&1 | tee test-output/chaos.log |
	grep --line-buffered -E '^(=== RUN|--- |\s+\S+_test\.go:[0-9]+: |PASS|FAIL|ok|chaos:)'
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
	echo "chaos: a scenario failed; the end of test-output/chaos.log (processes' logs included):" >&2
	tail -n 400 test-output/chaos.log >&2
	exit "$status"
fi
echo "chaos: scenarios passed in $(($(date +%s) - start)) s; figures:"
cat "$CHAOS_REPORT"
deploy/fuzz.sh
echo "chaos: passed in $(($(date +%s) - start)) s"
