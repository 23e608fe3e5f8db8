#!/usr/bin/env bash
# Brings up Orbt on one machine from a clean checkout: PostgreSQL and Redis
# (started or installed by deploy/services.sh), the orbt binary, the orbt
# database and its schema, `orbt dev` in the background, and a demo
# workspace funded with test money. Prints the demo API key and the URLs.
# Safe to run again: it reuses the demo workspace and restarts orbt dev.
set -euo pipefail
cd "$(dirname "$0")/.."
state=.orbt
mkdir -p "$state"

deploy/services.sh

if ! command -v go >/dev/null 2>&1; then
  if [ -x /usr/local/go/bin/go ]; then
    export PATH="/usr/local/go/bin:$PATH"
  else
    echo "up: Go 1.26 or newer is needed to build orbt: https://go.dev/doc/install" >&2
    exit 1
  fi
fi
echo "up: building bin/orbt" >&2
go build -o bin/orbt .

# Settings: the defaults of config.Config, plus an admin token and a data
# key (it seals gift card codes) kept in .orbt/env.
if [ ! -f "$state/env" ]; then
  printf 'ORBT_ADMIN_TOKEN=%s\nORBT_WEBHOOK_ALLOW_PRIVATE=true\n' "adm_$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')" > "$state/env"
fi
if ! grep -q '^ORBT_DATA_KEY=' "$state/env"; then
  printf 'ORBT_DATA_KEY=%s\n' "$(head -c 32 /dev/urandom | base64 | tr -d '\n')" >> "$state/env"
fi
chmod 600 "$state/env"
set -a
. "$state/env"
set +a
export ORBT_HTTP_ADDR="${ORBT_HTTP_ADDR:-:8080}"
port="${ORBT_HTTP_ADDR##*:}"
base="http://127.0.0.1:$port"

if [ -z "${DATABASE_URL:-}" ] && command -v psql >/dev/null 2>&1; then
  if [ -z "$(psql -h 127.0.0.1 -U postgres -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = 'orbt'")" ]; then
    echo "up: creating database orbt" >&2
    psql -h 127.0.0.1 -U postgres -d postgres -qc 'CREATE DATABASE orbt'
  fi
fi
bin/orbt migrate up

# Restart orbt dev in the background.
if [ -f "$state/dev.pid" ] && kill -0 "$(cat "$state/dev.pid")" 2>/dev/null; then
  kill "$(cat "$state/dev.pid")"
  for _ in $(seq 1 60); do kill -0 "$(cat "$state/dev.pid")" 2>/dev/null || break; sleep 0.5; done
fi
nohup bin/orbt dev > "$state/dev.log" 2>&1 &
echo $! > "$state/dev.pid"
for _ in $(seq 1 60); do
  curl -fsS "$base/readyz" >/dev/null 2>&1 && break
  kill -0 "$(cat "$state/dev.pid")" 2>/dev/null || { echo "up: orbt dev exited; see $state/dev.log" >&2; tail -n 20 "$state/dev.log" >&2; exit 1; }
  sleep 0.5
done
curl -fsS "$base/readyz" >/dev/null || { echo "up: orbt dev is not ready; see $state/dev.log" >&2; exit 1; }

# The demo workspace: created once, funded with $1,000,000.00 of test money.
key=""
if [ -f "$state/demo.json" ]; then
  key=$(sed -n 's/.*"apiKey": "\(.*\)".*/\1/p' "$state/demo.json")
  curl -fsS -o /dev/null -H "Authorization: Bearer $key" "$base/v1/workspace" || key=""
fi
if [ -z "$key" ]; then
  bin/orbt workspace create --name demo > "$state/demo.json"
  key=$(sed -n 's/.*"apiKey": "\(.*\)".*/\1/p' "$state/demo.json")
fi
workspace=$(sed -n 's/.*"id": "\(.*\)".*/\1/p' "$state/demo.json")
signing_secret=$(sed -n 's/.*"signingSecret": "\(.*\)".*/\1/p' "$state/demo.json")
# The console: the invitation of the demo workspace's first admin, made
# afresh while nobody has accepted one (one use, 7 days).
console_invite=$(bin/orbt workspace invite --workspace "$workspace" --unless-admin | sed -n 's/.*"consoleInviteUrl": "\(.*\)".*/\1/p')
if [ -n "$console_invite" ]; then
  console_line="$console_invite
                 (open it to create the demo workspace's first admin: one use, 7 days)"
else
  console_line="$base/console/login   (the demo admin has joined: sign in)"
fi
bin/orbt fund --workspace "$workspace" --currency USD --amount 100000000 --reference demo-funding-1 >/dev/null

# Gift cards: the four sandbox brands enabled for the demo workspace, and a
# demo consumer (created once) with $50.00 in a standard USD wallet and a
# fresh link to the consumer pages.
# The first "id" of the given prefix in a JSON answer; empty when none
# (never a failure, which set -e would end the script on).
json_id() { { grep -o "\"id\":\"$1_[^\"]*\"" || true; } | head -n 1 | cut -d'"' -f4; }
curl -fsS -o /dev/null -X PUT -H "Authorization: Bearer $ORBT_ADMIN_TOKEN" \
  -d '{"brandIds":["sandbox-coffee","sandbox-books","sandbox-declines","sandbox-slow"]}' "$base/admin/v1/workspaces/$workspace/brands"
auth="Authorization: Bearer $key"
consumer=$(curl -fsS -H "$auth" "$base/v1/consumers?externalId=demo-consumer" | json_id csm)
if [ -z "$consumer" ]; then
  consumer=$(curl -fsS -H "$auth" -d '{"externalId":"demo-consumer","name":"Demo Consumer"}' "$base/v1/consumers" | json_id csm)
fi
wallet=$(curl -fsS -H "$auth" "$base/v1/consumers/$consumer/wallets" | json_id wal)
if [ -z "$wallet" ]; then
  wallet=$(curl -fsS -H "$auth" -d '{"currency":"USD","type":"standard"}' "$base/v1/consumers/$consumer/wallets" | json_id wal)
fi
curl -fsS -o /dev/null -H "$auth" -H 'Prefer: wait=5' \
  -d "{\"referenceId\":\"demo-consumer-credit-1\",\"type\":\"credit\",\"walletId\":\"$wallet\",\"amount\":5000,\"currency\":\"USD\"}" "$base/v1/transactions"
link=$(curl -fsS -H "$auth" -d '{}' "$base/v1/consumers/$consumer/links" | { grep -o '"url":"[^"]*"' || true; } | cut -d'"' -f4)

cat <<MSG

Orbt is running (orbt dev, pid $(cat "$state/dev.pid"), log $state/dev.log).

  API            $base   (reference: $base/docs, OpenAPI 3.1: $base/openapi.json)
  Demo API key   $key
  Workspace      $workspace   (funded with 100000000 USD minor units; sandbox gift card brands enabled)
  Console        $console_line
  Signing secret $signing_secret
                 (Orbt-compatible API at $base/api/partner/v1: x-client-id is the workspace id;
                  after POST /v1/workspace/signing-secret/rotate this one works for a day more)
  Consumer page  $link
                 (the demo consumer's link, valid 24 h: open it to redeem their \$50.00)
  Admin token    $ORBT_ADMIN_TOKEN
  Queues         $base/ops/queues   (user: admin, password: the admin token)
  Metrics        $base/metrics
  Health         $base/healthz  $base/readyz

Try:  curl -s -H "Authorization: Bearer $key" $base/v1/workspace
Stop: kill \$(cat $state/dev.pid)
MSG
