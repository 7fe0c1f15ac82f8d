# SpikeGate — the two commands: `make demo` and `make test`. Both install what is missing first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

SWIFT ?= swift
# Debian packages the build and the tests need (hiredis headers, a real redis-server, OpenSSL's
# s_client and curl as real TLS clients for the gateway's TLS tests, Chromium to load the
# admin dashboard headless, and systemd-analyze, haproxy and keepalived to check the Deploy/
# files with the tools that read them).
DEPS_PACKAGES := pkg-config libhiredis-dev redis-server openssl curl chromium systemd haproxy keepalived
# Extra packages only the side-by-side benchmarks need.
BENCH_PACKAGES := redis-tools
BENCH_NODE_PACKAGES := redis-tools apache2-utils wrk nginx
BENCH_PROXY_PACKAGES := wrk nginx haproxy redis-tools
BENCH_OVERLOAD_PACKAGES := wrk nginx haproxy python3
SUDO := $(shell [ "$$(id -u)" = "0" ] || echo sudo)

.PHONY: help deps deps-bench deps-bench-node deps-bench-proxy deps-bench-overload build release test demo bench-redis bench-node bench-proxy bench-overload bench-sale screenshot clean

help:
	@echo "make demo         install missing packages, build, run the flash-sale demo"
	@echo "make test         install missing packages, build, run the whole test suite"
	@echo "make deps         install missing Debian packages ($(DEPS_PACKAGES))"
	@echo "make build        debug build"
	@echo "make release      release build"
	@echo "make bench-redis  GateRedis vs redis-benchmark on the same server, as ratios"
	@echo "make bench-node   ab and wrk against one ticket node and 4 nodes behind nginx (weights 1-4)"
	@echo "make bench-proxy  wrk through spikegate gateway, nginx and haproxy (one thread each) to one backend, vs direct"
	@echo "make bench-overload  the sold-out latch vs haproxy proxying the answer; refusals under 10x overload"
	@echo "make bench-sale   the headline: 1,000,000 people (and bots) for 10,000 tickets through the whole system"
	@echo "make screenshot   docs/dashboard.png: the admin dashboard of a live gateway, by headless Chromium"

# Installs only what is missing; `apt-get update` runs once, and only when something is missing.
deps:
	@missing=""; for p in $(DEPS_PACKAGES) $(EXTRA_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "system packages present: $(DEPS_PACKAGES) $(EXTRA_PACKAGES)"; fi

deps-bench:
	@$(MAKE) --no-print-directory deps EXTRA_PACKAGES="$(BENCH_PACKAGES)"

deps-bench-node:
	@$(MAKE) --no-print-directory deps EXTRA_PACKAGES="$(BENCH_NODE_PACKAGES)"

deps-bench-proxy:
	@$(MAKE) --no-print-directory deps EXTRA_PACKAGES="$(BENCH_PROXY_PACKAGES)"

deps-bench-overload:
	@$(MAKE) --no-print-directory deps EXTRA_PACKAGES="$(BENCH_OVERLOAD_PACKAGES)"

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release --product spikegate

# The load tests (GateProxyTests.Load*: goodput and ramp shares measured against a clock), the
# end-to-end scenario replays and the suites that start a Redis Cluster, a Sentinel set-up or
# several gateway processes run after the rest, one at a time: on two cores they would starve
# the timing of the others.
SERIAL_TESTS := GateProxyTests\.Load|TrafficReplayTests\.(EndToEnd|Demo|ClusterSale|SentinelSale)|GateRedisTests\.Redis(Cluster|Sentinel)Tests|SpikegateTests\.MiniAttackTests|TicketNodeTests\.ReplicaAckTests
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --skip '$(SERIAL_TESTS)'
	$(SWIFT) test --skip-build --no-parallel --filter '$(SERIAL_TESTS)'

# The flash sale on this machine: a private redis-server, 4 ticket nodes (weights 1:2:3:4), the
# gateway, and 100,000 people plus attackers for 10,000 tickets; prints the report and the
# dashboard's address, then runs until Ctrl-C. DEMO_ARGS="--exit" stops after the report;
# "--users N --tickets M" resizes it.
DEMO_ARGS ?=
demo: release
	.build/release/spikegate demo $(DEMO_ARGS)

# The sources' headline on this machine: SALE_USERS people for SALE_TICKETS tickets, arriving
# over SALE_RAMP, with the attackers scaled by SALE_ATTACKERS, through the gateway to four ticket
# nodes; the report (wall time, requests/s, p99, oversold) goes to bench-sale.json too.
SALE_USERS ?= 1000000
SALE_TICKETS ?= 10000
SALE_RAMP ?= 60s
SALE_ATTACKERS ?= 0.02
bench-sale: release
	.build/release/spikegate demo --exit --port 0 --admin-port 0 --users $(SALE_USERS) --tickets $(SALE_TICKETS) \
	  --ramp $(SALE_RAMP) --attackers $(SALE_ATTACKERS) --report bench-sale.json

bench-redis: deps-bench release
	@bash Deploy/bench/bench-redis.sh

bench-node: deps-bench-node release
	@bash Deploy/bench/bench-node.sh

# Knobs: ROUNDS, DURATION, CONCURRENCY, WARMUP, SPIKEGATE_BIN, SKIP_SPIKEGATE (see the script).
bench-proxy: deps-bench-proxy release
	@bash Deploy/bench/bench-proxy.sh

# The admin dashboard with a ban and a challenge in place, rendered by headless Chromium.
screenshot: release
	@$(MAKE) --no-print-directory deps EXTRA_PACKAGES="python3"
	@bash Deploy/screenshot.sh

# Knobs: ROUNDS, DURATION, CONCURRENCY, RATE, SPIKEGATE_BIN (see the script).
bench-overload: deps-bench-overload release
	@bash Deploy/bench/bench-overload.sh

clean:
	rm -rf .build
