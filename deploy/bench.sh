#!/usr/bin/env bash
# make bench: measures Orbt on this machine against its own pgbench figure.
# Starts `orbt api` and `orbt worker` on a fresh database (and its own Redis
# index), drives them with `orbt loadtest` through the public API, runs the
# ledger's Go benchmarks and pgbench TPC-B, and prints one Markdown table
# and issue 14's targets for BENCHMARKS.md. Everything it creates it drops
# again.
#
# BENCH_QUICK=1 runs smaller counts (a smoke run, not figures to record).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

deploy/services.sh
go build -o bin/orbt .
# BENCH_STACK_BIN=path runs the stack (migrate, api, worker) from another
# build, say an earlier commit's, driven and measured by this one's
# loadtest: a before-and-after on the same machine, in the same window.
stack_bin=${BENCH_STACK_BIN:-bin/orbt}

pg="postgres://postgres@127.0.0.1:5432"
stamp=$(date +%s)
db="orbt_bench_$stamp"
pgbench_db="orbt_pgbench_$stamp"
redis_db=15
port=8199
api="http://127.0.0.1:$port"
token="bench_$stamp"
log=$(mktemp -d)/bench
mkdir -p "$log"
api_pid="" worker_pid=""

cleanup() {
  for pid in $api_pid $worker_pid; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" \
    -c "DROP DATABASE IF EXISTS $pgbench_db WITH (FORCE)" >/dev/null 2>&1 || true
  redis-cli -n "$redis_db" flushdb >/dev/null 2>&1 || true
}
trap cleanup EXIT

if [ "${BENCH_QUICK:-}" = 1 ]; then
  n_cmp=5000 n_single=3000 n_hot=10000 n_steady=3000 bulk_many=20000 n_redeem=1000 n_partner=3000 pgbench_secs=5 benchtime=2000x
else
  n_cmp=30000 n_single=30000 n_hot=100000 n_steady=20000 bulk_many=100000 n_redeem=10000 n_partner=20000 pgbench_secs=30 benchtime=20000x
fi
command -v jq >/dev/null || { echo "bench: needs jq (apt-get install jq)" >&2; exit 1; }

echo "bench: pgbench TPC-B (scale 10, 16 clients, ${pgbench_secs}s)" >&2
psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $pgbench_db"
pgbench -q -i -s 10 -h 127.0.0.1 -U postgres "$pgbench_db" >/dev/null 2>&1
# Start from a clean checkpoint, as the loadtest runs below do, and warm up.
psql -q -h 127.0.0.1 -U postgres -d "$pgbench_db" -c CHECKPOINT
pgbench -c 16 -j 2 -T 5 -h 127.0.0.1 -U postgres "$pgbench_db" >/dev/null 2>&1
tps=$(pgbench -c 16 -j 2 -T "$pgbench_secs" -h 127.0.0.1 -U postgres "$pgbench_db" 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE $pgbench_db WITH (FORCE)"

echo "bench: starting orbt api and orbt worker on $api (database $db, Redis index $redis_db)" >&2
psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $db"
redis-cli -n "$redis_db" flushdb >/dev/null
export DATABASE_URL="$pg/$db?sslmode=disable" REDIS_URL="redis://127.0.0.1:6379/$redis_db" ORBT_HTTP_ADDR="127.0.0.1:$port" \
  ORBT_ADMIN_TOKEN="$token" ORBT_RATE_LIMIT_READ=0 ORBT_RATE_LIMIT_WRITE=0 ORBT_WEBHOOK_ALLOW_PRIVATE=true
"$stack_bin" migrate up > "$log/migrate.log" 2>&1
# Two processes, as production runs them, so the CPU and memory of each
# show apart.
"$stack_bin" api > "$log/api.log" 2>&1 &
api_pid=$!
"$stack_bin" worker > "$log/worker.log" 2>&1 &
worker_pid=$!
for _ in $(seq 1 60); do curl -fsS "$api/readyz" >/dev/null 2>&1 && break; sleep 0.5; done

rows="$log/rows.md"
bin/orbt loadtest --row-header > "$rows"
run() { # name scenario-args...: one row, and the report as $log/name.json
  local name=$1
  shift
  # BENCH_ONLY="hot spread" runs only the runs named (for a quick look).
  [ -z "${BENCH_ONLY:-}" ] || [[ " $BENCH_ONLY " == *" $name "* ]] || return 0
  echo "bench: loadtest $*" >&2
  bin/orbt loadtest --api "$api" --admin-token "$token" --database-url "$DATABASE_URL" --row --json-out "$log/$name.json" "$@" >> "$rows"
}
# Issue 14's comparison, back to back: one partner, then 50 partners of 40
# wallets each, as many wallets in all; then the hot run again with a
# loopback receiver subscribed to every transaction.completed.
run hot --scenario hot --count "$n_cmp" --concurrency 64 --wallets 2000
# Memory: the same credits again, more of them, right after, before the
# bulk payouts' large bodies raise the API's heap.
run hot_long --scenario hot --count "$n_hot" --concurrency 64 --wallets 2000
run spread --scenario spread --count "$n_cmp" --concurrency 64 --partners 50 --wallets 40
run webhooks --scenario hot --count "$n_cmp" --concurrency 64 --wallets 2000 --webhooks
run bulk_new --scenario bulk --count 10000 --new-consumers --wallets 10
run bulk --scenario bulk --count 10000
run single --scenario single --count "$n_single" --concurrency 64
run steady --scenario hot --count "$n_steady" --concurrency 64 --rate 1000
run bulk_many --scenario bulk --count "$bulk_many" --batch-size 10000
# Redemptions end to end through the sandbox provider: hold, call, capture.
run redeem --scenario redeem --count "$n_redeem" --concurrency 32 --wallets 1000
# The hot credits again, signed, through the Orbt-compatible API, each
# request answered only once its credit is applied.
run partner --scenario partner --count "$n_partner" --concurrency 64

echo "bench: Go benchmarks of the ledger" >&2
[ -n "${BENCH_ONLY:-}" ] && benchtime=1x
gobench=$(go test -run '^$' -bench . -benchtime "$benchtime" ./ledger 2>&1 | grep -E '^Benchmark' || true)

cores=$(nproc)
echo
echo "Measured $(date -u +%Y-%m-%d) on $cores cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)), Postgres $(psql -h 127.0.0.1 -U postgres -Atc 'SHOW server_version'), synchronous_commit $(psql -h 127.0.0.1 -U postgres -Atc 'SHOW synchronous_commit'), load generator on the same machine."
echo
echo "pgbench TPC-B: $tps tps (scale 10, 16 clients, 2 threads, ${pgbench_secs}s)"
echo
cat "$rows"
echo
j() { jq -r "$2" "$log/$1.json" 2>/dev/null || echo –; }
cpu() { j "$1" '.stackCpu as $c | .count as $n | "\((($c.goNs + $c.postgresNs + $c.redisNs) / $n / 1e6 * 1000 | round) / 1000) ms (Go \(($c.goNs / $n / 1e6 * 1000 | round) / 1000), Postgres \(($c.postgresNs / $n / 1e6 * 1000 | round) / 1000), Redis \(($c.redisNs / $n / 1e6 * 1000 | round) / 1000))"'; }
ratio() { jq -rn --argjson a "$1" --argjson b "$2" '($a / $b * 100 | round) / 100' 2>/dev/null || echo –; }
hot=$(j hot .appliedPerSecond) spread=$(j spread .appliedPerSecond) webhooks=$(j webhooks .appliedPerSecond)
hot=${hot/–/0} spread=${spread/–/0} webhooks=${webhooks/–/0}
echo "Targets (issue 14), from this run:"
echo
echo "| target | measured |"
echo "|---|---|"
echo "| spread ≥ 0.9 × hot applied/s | $(ratio "$spread" "$hot") (spread $(printf %.0f "$spread")/s, hot $(printf %.0f "$hot")/s) |"
echo "| stack CPU per applied transaction ≤ 0.25 ms, hot | $(cpu hot) |"
echo "| stack CPU per applied transaction ≤ 0.25 ms, spread | $(cpu spread) |"
echo "| hot applied/s ≥ 2.5 × pgbench TPC-B | $(ratio "$hot" "$tps") |"
echo "| 10,000-item batch, new consumers: POST to completed ≤ 1 s | $(j bulk_new '.batchWall.maxNs / 1e6 | round') ms |"
echo "| 10,000-item batch, existing wallets: 202 to completed ≤ 0.5 s | $(j bulk '.batchAfterAccept.maxNs / 1e6 | round') ms (POST to completed $(j bulk '.batchWall.maxNs / 1e6 | round') ms) |"
echo "| webhooks delivered/s ≥ 0.9 × applied/s | $(ratio "$(j webhooks .deliveredPerSecond)" "$webhooks") ($(j webhooks '.deliveredPerSecond | round')/s delivered, $(printf %.0f "$webhooks")/s applied) |"
echo "| last delivery ≤ 1 s after the last apply | $(j webhooks '(.deliveryLagNs / 1e6 | round)') ms |"
echo "| applied/s with the receiver ≥ 0.9 × without | $(ratio "$webhooks" "$hot") |"
echo "| stack CPU per transaction with its delivery | $(cpu webhooks) |"
echo "| RSS after the first $n_cmp credits | $(j hot '.rssBytes | to_entries | map("\(.key) \(.value / 1048576 | round) MB") | join(", ")') |"
echo "| RSS after the next $n_hot credits (hot, right after) | $(j hot_long '.rssBytes | to_entries | map("\(.key) \(.value / 1048576 | round) MB") | join(", ")') |"
echo
echo '```'
echo "$gobench"
echo '```'
