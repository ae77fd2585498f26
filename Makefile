# hookstream — make targets. `make dev` and `make test` find or start Redis and PostgreSQL
# themselves (scripts/services.sh; see README.md).

# Go lives in /usr/local/go/bin on a fresh machine, which is not always on PATH.
ifeq ($(shell command -v go 2>/dev/null),)
export PATH := /usr/local/go/bin:$(PATH)
endif

# go1.27.3 fixes the standard-library vulnerabilities govulncheck finds in go1.26.8
# (docs/security.md); the go command fetches it from the module proxy once (~76 MB).
# GOTOOLCHAIN=local make … builds with whatever Go is installed instead.
GOTOOLCHAIN ?= go1.27.3
export GOTOOLCHAIN

GO ?= go
BIN := bin/hookstream
WITH_SERVICES := scripts/with-services.sh
SERVICES := scripts/services.sh
FUZZTIME ?= 30s
BENCH_ARGS ?=

.DEFAULT_GOAL := build

.PHONY: help build plugin dev test test-chaos vet vulncheck fmt docs bench bench-process bench-windows bench-memory bench-api bench-e2e fuzz services-up services-down services-status clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /  make \1\t/' | expand -t 24

build: ## build bin/hookstream
	$(GO) build -o $(BIN) ./cmd/hookstream

plugin: ## build grafana-plugin/dist/ (npm checks, webpack, Go backend for 4 platforms) and zip it
	GO="$(GO)" grafana-plugin/scripts/package.sh

dev: build ## run hookstream locally with simulated Dwolla traffic (Ctrl-C stops all it started)
	$(WITH_SERVICES) $(BIN) dev

test: ## run every test against real Redis and PostgreSQL (and the console in headless Chromium)
	chromium="$$(scripts/chromium.sh)" && HOOKSTREAM_CHROMIUM="$$chromium" $(WITH_SERVICES) $(GO) test -race -count=1 -timeout 45m ./... ./grafana-plugin/...

test-chaos: ## the chaos table and Redis Cluster tests (docs/reliability.md); make test runs them all but the flaky cluster failover
	HOOKSTREAM_TEST_FAILOVER=1 $(WITH_SERVICES) $(GO) test ./cmd/hookstream -run '^(TestChaos|TestScaleOutOnRedisCluster)' -count=1 -timeout 30m -v

vet: ## go vet
	$(GO) vet ./... ./grafana-plugin/...

vulncheck: ## govulncheck both modules against a database built offline from golang.org/x/vulndb (docs/security.md)
	GO="$(GO)" scripts/vulncheck.sh

fmt: ## fail when a Go file is not gofmt-formatted
	@files="$$(find . -name '*.go' -not -path './.git/*' -not -path './.hookstream/*' \
		-not -path '*/node_modules/*' -print0 | xargs -0 -r gofmt -l)"; \
	if [ -n "$$files" ]; then echo "not gofmt-formatted (run gofmt -w):" >&2; echo "$$files" >&2; exit 1; fi

docs: ## regenerate docs/configuration.md from the flag definitions (a test checks it is current)
	$(GO) run ./cmd/hookstream help configuration > docs/configuration.md

bench: build ## benchmark ingest against the naive receivers (see docs/benchmarks.md)
	$(WITH_SERVICES) $(BIN) bench ingest $(BENCH_ARGS)

bench-process: build ## drain a 1M-event backlog: hookstream vs naive processor vs COPY (see docs/benchmarks.md)
	$(WITH_SERVICES) $(BIN) bench process $(BENCH_ARGS)

bench-windows: build ## latency from a webhook's ACK to its count in the 1m window (see docs/benchmarks.md)
	$(WITH_SERVICES) $(BIN) bench windows $(BENCH_ARGS)

bench-memory: build ## Redis memory per event (dedup keys, stream entries) on a private Redis
	$(WITH_SERVICES) $(BIN) bench memory

bench-e2e: build ## the whole pipeline under open-loop load: 5k and 10k/s, the sustainable rate, a 10x spike (see docs/benchmarks.md)
	$(WITH_SERVICES) $(BIN) bench e2e --sustain --spike $(BENCH_ARGS)

bench-api: build ## API query latency and live feed over 10M seeded events, kept for reruns (see docs/benchmarks.md)
	$(WITH_SERVICES) $(BIN) bench api --keep $(BENCH_ARGS)

fuzz: ## fuzz every untrusted input (webhook bodies, spool, API parameters, journey/alert/series YAML), FUZZTIME each (default 30s)
	$(GO) test ./dwolla -run '^$$' -fuzz FuzzParseEvent -fuzztime $(FUZZTIME)
	$(GO) test ./ingest -run '^$$' -fuzz FuzzDecodeEntry -fuzztime $(FUZZTIME)
	$(GO) test ./api -run '^$$' -fuzz '^FuzzParams$$' -fuzztime $(FUZZTIME)
	$(GO) test ./api -run '^$$' -fuzz FuzzCursorRoundTrip -fuzztime $(FUZZTIME)
	$(GO) test ./journeys -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)
	$(GO) test ./alert -run '^$$' -fuzz FuzzParseRules -fuzztime $(FUZZTIME)
	$(GO) test ./anomaly -run '^$$' -fuzz FuzzParseWatch -fuzztime $(FUZZTIME)

services-up: ## start (or find) Redis and PostgreSQL and write .hookstream/env
	$(SERVICES) up

services-down: ## stop the private Redis and PostgreSQL that services-up started
	$(SERVICES) down

services-status: ## show the private instances and the URLs in .hookstream/env
	$(SERVICES) status

clean: ## remove bin/, stop the private instances, then delete their data
	rm -rf bin
	$(SERVICES) purge
