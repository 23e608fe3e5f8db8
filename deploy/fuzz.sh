#!/usr/bin/env bash
# Runs every Go fuzz target, one after another, each for FUZZTIME (default
# 30s) with FUZZ_PARALLEL workers (default 2), and stops at the first that
# fails. Go writes the failing input to the target's
# <package>/testdata/fuzz/<target>/ directory, where plain `go test` (and so
# `make test`) replays it from then on: commit it with the fix. The HTTP
# targets run over the local Postgres, as the tests do, each fuzzing
# process with a redis-server of its own (teststack.ForFuzz).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
GO="${GO:-go}"
fuzztime="${FUZZTIME:-30s}"
parallel="${FUZZ_PARALLEL:-2}"
# How long each new input is minimized (go test's default is 60s). Every
# input that finds new code is minimized, and an HTTP target's inputs are
# requests: at the default, a 30s run spends itself shrinking its first
# finds. A failing input is minimized the same way, shorter but still
# small.
minimizetime="${FUZZ_MINIMIZETIME:-5s}"

# One line per target: its package and its name.
targets=(
	"./validate FuzzMajorAmount"
	"./batchreq FuzzReadCSV"
	"./webhooksig FuzzVerify"
	"./api FuzzCreateTransaction"
	"./api FuzzWriteRoutes"
	"./partnerapi FuzzPartnerWrites"
	"./consumerui FuzzConsumerForms"
	"./console FuzzConsoleForms"
)

deploy/services.sh
out=$(mktemp)
trap 'rm -f "$out"' EXIT
start=$(date +%s)
for entry in "${targets[@]}"; do
	read -r pkg target <<<"$entry"
	echo "fuzz: $target ($pkg) for $fuzztime, $parallel workers"
	set +e
	"$GO" test -run '^$' -fuzz "^$target\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimizetime" -parallel "$parallel" "$pkg" 2>&1 | tee "$out"
	status=${PIPESTATUS[0]}
	set -e
	if [ "$status" -ne 0 ]; then
		echo "fuzz: $target ($pkg) failed." >&2
		input=$(sed -n 's/.*Failing input written to \(testdata\/fuzz\/[^ ]*\).*/\1/p' "$out" | tail -n 1)
		seed=$(sed -n 's/.*failure while testing seed corpus entry: \([^ ]*\).*/\1/p' "$out" | tail -n 1)
		if [ -n "$input" ]; then
			echo "fuzz: the failing input is $pkg/$input; replay it with:" >&2
			echo "  $GO test -count=1 -run '^$target/$(basename "$input")\$' $pkg" >&2
		elif [ -n "$seed" ]; then
			echo "fuzz: a seed or committed input fails before any fuzzing; replay it with:" >&2
			echo "  $GO test -count=1 -run '^${seed%%/*}/${seed#*/}\$' $pkg" >&2
		else
			echo "fuzz: no failing input was written (the build or the setup failed); run it again with:" >&2
			echo "  $GO test -run '^\$' -fuzz '^$target\$' -fuzztime $fuzztime -fuzzminimizetime $minimizetime -parallel $parallel $pkg" >&2
		fi
		exit "$status"
	fi
done
echo "fuzz: ${#targets[@]} targets passed in $(($(date +%s) - start)) s"
