# The front door: `make help` lists the targets.
.DEFAULT_GOAL := help
GO ?= go
export PATH := $(PATH):/usr/local/go/bin

# Redis database indexes are handed out one per test package (see each
# package's TestMain): api 1 (and 11-14 for stacks of its own), worker 2,
# sweep 3, loadtest 4, consumerui 5, the kill -9 test in main 6, partnerapi
# 7 (and 8, which no worker reads), deploy 9, console 10; make bench uses 15.
# scale/ starts Redis and Postgres servers of its own on free ports.

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

.PHONY: up
up: ## bring up Postgres, Redis and orbt dev with a demo workspace
	deploy/up.sh

.PHONY: build
build: ## build bin/orbt
	$(GO) build -o bin/orbt .

.PHONY: services
services: ## start (or install) Postgres and Redis on localhost
	deploy/services.sh

.PHONY: test
test: ## run every test with -race against real Postgres, Redis and Chromium; screenshots land in test-output/
	deploy/services.sh --with-test-tools
	@mkdir -p test-output
	$(GO) test -race -count=1 -timeout 15m -artifacts -outputdir $(CURDIR)/test-output ./...

.PHONY: chaos
chaos: ## the fault and security suite on real processes, then the fuzz targets (CHAOS_PROFILE=ci|full, CHAOS_SEED=N replays; figures in test-output/)
	deploy/chaos.sh

.PHONY: bench
bench: ## measure: orbt loadtest scenarios, ledger benchmarks and pgbench, as one table
	deploy/bench.sh

.PHONY: lint
lint: ## vet and check formatting
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)
