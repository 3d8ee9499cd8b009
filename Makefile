# scripthost build, test and benchmark entry points.
#
#   make test     install the peers (uWSGI, nginx, Redis: Debian packages),
#                 vet, build for darwin and vet for freebsd (the portable
#                 path), test everything (SCRIPTHOST_PEERS=1: a missing peer
#                 fails its tests, which a plain `go test ./...` skips)
#   make fuzz     every fuzz target of the module for FUZZTIME each
#   make bench    Go benchmarks, then tests/bench.sh: scripthost (Lua, then
#                 JavaScript, then Go scripts) and uWSGI side by side
#   make build    go build ./...
#   make run      go run ./cmd/scripthost $(RUN_ARGS)
#   make deps     install the peers only
#   make clean    remove build outputs

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

# Go's default install location, for machines where go is not on PATH.
export PATH := $(PATH):/usr/local/go/bin

GO       ?= go
FUZZTIME ?= 30s
# The JavaScript and Go runs of `make bench`: their hello app answers
# modifier1 6 (--map 6=app), so the Lua tests of bench.sh compare them with
# uWSGI's Lua plugin.
ENGINE_TESTS ?= rpc_oneshot_c32 rpc_keepalive_c32 lua_hello_c32 http_nginx_c32
RUN_ARGS ?= serve

.DEFAULT_GOAL := build
.PHONY: test vet fuzz bench build run deps clean

test:
	bash tests/install-peers.sh
	$(GO) vet ./...
	GOOS=darwin $(GO) build ./...
	GOOS=freebsd $(GO) vet ./...
	SCRIPTHOST_PEERS=1 $(GO) test -race -count=1 -timeout 20m ./...

vet:
	$(GO) vet ./...

deps:
	bash tests/install-peers.sh

build:
	$(GO) build ./...

run:
	$(GO) run ./cmd/scripthost $(RUN_ARGS)

# `go test -list` prints the matching names of a package, then its
# "ok <import path> <time>" line; -fuzz takes one package at a time.
fuzz:
	@mod="$$($(GO) list -m)"; \
	list="$$($(GO) test -list '^Fuzz' ./... | awk \
	  '/^Fuzz/ { names = names " " $$1; next } \
	   /^ok[ \t]/ { if (names != "") print $$2 names; names = "" }')"; \
	if [[ -z "$$list" ]]; then echo "no fuzz targets in $$mod"; exit 0; fi; \
	while read -r pkg names; do \
	  dir="./$${pkg#"$$mod"}"; dir="$${dir/#.\/\//./}"; \
	  for name in $$names; do \
	    echo "== fuzz $$dir $$name ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) "$$dir"; \
	  done; \
	done <<<"$$list"

bench: deps
	SCRIPTHOST_PEERS=1 $(GO) test -run '^$$' -bench . -benchmem ./...
	bash tests/bench.sh
	SCRIPTHOST_CMD="BIN serve --socket ADDR --scripts tests/testdata/bench/js --map 6=app" \
	  TESTS="$(ENGINE_TESTS)" bash tests/bench.sh
	SCRIPTHOST_CMD="BIN serve --socket ADDR --scripts tests/testdata/bench/go --map 6=app" \
	  TESTS="$(ENGINE_TESTS)" bash tests/bench.sh

clean:
	rm -rf bin dist
	rm -f scripthost *.test *.prof coverage.out coverage.html
