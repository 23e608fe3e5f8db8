#!/usr/bin/env bash
# make bench: measures Orbt on this machine against its own pgbench figure.
# Starts `orbt dev` on a fresh database (and its own Redis index), drives it
# with `orbt loadtest` through the public API, runs the ledger's Go
# benchmarks and pgbench TPC-B, and prints one Markdown table for
# BENCHMARKS.md. Everything it creates it drops again.
#
# BENCH_QUICK=1 runs smaller counts (a smoke run, not figures to record).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

deploy/services.sh
go build -o bin/orbt .

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
dev_pid=""

cleanup() {
  [ -n "$dev_pid" ] && kill "$dev_pid" 2>/dev/null && wait "$dev_pid" 2>/dev/null
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" \
    -c "DROP DATABASE IF EXISTS $pgbench_db WITH (FORCE)" >/dev/null 2>&1 || true
  redis-cli -n "$redis_db" flushdb >/dev/null 2>&1 || true
}
trap cleanup EXIT

if [ "${BENCH_QUICK:-}" = 1 ]; then
  n_single=3000 n_hot=10000 n_spread=10000 n_steady=3000 bulk_many=20000 n_redeem=1000 n_partner=3000 pgbench_secs=5 benchtime=2000x spread_wallets=50
else
  # spread: 20 partners of 500 wallets, as many wallets as hot's one partner.
  n_single=30000 n_hot=100000 n_spread=100000 n_steady=20000 bulk_many=100000 n_redeem=10000 n_partner=20000 pgbench_secs=30 benchtime=20000x spread_wallets=500
fi

echo "bench: pgbench TPC-B (scale 10, 16 clients, ${pgbench_secs}s)" >&2
psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $pgbench_db"
pgbench -q -i -s 10 -h 127.0.0.1 -U postgres "$pgbench_db" >/dev/null 2>&1
# Start from a clean checkpoint, as the loadtest runs below do, and warm up.
psql -q -h 127.0.0.1 -U postgres -d "$pgbench_db" -c CHECKPOINT
pgbench -c 16 -j 2 -T 5 -h 127.0.0.1 -U postgres "$pgbench_db" >/dev/null 2>&1
tps=$(pgbench -c 16 -j 2 -T "$pgbench_secs" -h 127.0.0.1 -U postgres "$pgbench_db" 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE $pgbench_db WITH (FORCE)"

echo "bench: starting orbt dev on $api (database $db, Redis index $redis_db)" >&2
psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $db"
redis-cli -n "$redis_db" flushdb >/dev/null
DATABASE_URL="$pg/$db?sslmode=disable" REDIS_URL="redis://127.0.0.1:6379/$redis_db" ORBT_HTTP_ADDR="127.0.0.1:$port" \
  ORBT_ADMIN_TOKEN="$token" ORBT_RATE_LIMIT_READ=0 ORBT_RATE_LIMIT_WRITE=0 bin/orbt dev > "$log/dev.log" 2>&1 &
dev_pid=$!
for _ in $(seq 1 60); do curl -fsS "$api/readyz" >/dev/null 2>&1 && break; sleep 0.5; done

rows="$log/rows.md"
bin/orbt loadtest --row-header > "$rows"
run() { # scenario args...
  echo "bench: loadtest $*" >&2
  bin/orbt loadtest --api "$api" --admin-token "$token" --database-url "$pg/$db?sslmode=disable" --row "$@" >> "$rows"
}
run --scenario single --count "$n_single" --concurrency 64
run --scenario hot --count "$n_hot" --concurrency 64
run --scenario spread --count "$n_spread" --concurrency 64 --partners 20 --wallets "$spread_wallets"
run --scenario hot --count "$n_steady" --concurrency 64 --rate 1000
run --scenario bulk --count 10000
run --scenario bulk --count "$bulk_many" --batch-size 10000
# Redemptions end to end through the sandbox provider: hold, call, capture.
run --scenario redeem --count "$n_redeem" --concurrency 32 --wallets 1000
# The hot credits again, signed, through the Orbt-compatible API, each
# request answered only once its credit is applied.
run --scenario partner --count "$n_partner" --concurrency 64

echo "bench: Go benchmarks of the ledger" >&2
gobench=$(go test -run '^$' -bench . -benchtime "$benchtime" ./ledger 2>&1 | grep -E '^Benchmark' || true)

cores=$(nproc)
echo
echo "Measured $(date -u +%Y-%m-%d) on $cores cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)), Postgres $(psql -h 127.0.0.1 -U postgres -Atc 'SHOW server_version'), synchronous_commit $(psql -h 127.0.0.1 -U postgres -Atc 'SHOW synchronous_commit'), load generator on the same machine."
echo
echo "pgbench TPC-B: $tps tps (scale 10, 16 clients, 2 threads, ${pgbench_secs}s)"
echo
cat "$rows"
echo
echo '```'
echo "$gobench"
echo '```'
