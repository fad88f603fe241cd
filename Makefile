# paddock: build, demo and test. Every target installs what it needs from
# Debian's packages, so a fresh Debian 12 machine (with Go) needs nothing else.

SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# bin/paddock as root, keeping the caller's PADDOCK_HOME (sudo drops it).
PADDOCK := $(SUDO) $(if $(PADDOCK_HOME),env PADDOCK_HOME=$(PADDOCK_HOME)) bin/paddock

# Debian packages: QEMU and its image tool, debootstrap for the debian
# template, e2fsprogs for ext4 images, cpio and dpkg-dev-free unpacking.
DEB_PACKAGES := qemu-system-x86 qemu-utils debootstrap e2fsprogs busybox-static cpio xz-utils ca-certificates
# Node.js and npm build the dashboard's bundle (web/dashboard).
DEB_BUILD_PACKAGES := nodejs npm
# Chromium drives the dashboard's browser tests (test/e2e/dashboard_test.go).
DEB_TEST_PACKAGES := iproute2 chromium
# The E2B SDK tests (test/e2b) need this Node.js or later.
NODE_MIN := 20.18.1

# The dashboard's npm packages (web/dashboard/package-lock.json), installed
# once per lock file outside the repository.
DASHBOARD := web/dashboard
DASHBOARD_NPM := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/paddock/dashboard-npm-$(shell sha256sum $(DASHBOARD)/package-lock.json | cut -c1-16)

.PHONY: fuzz all deps test-deps build dashboard demo test test-agents vet templates clean proto

all: build

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi
	@missing=$$(for p in $(DEB_BUILD_PACKAGES); do command -v $${p%js} >/dev/null 2>&1 && continue; dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; fi
	@command -v $(GO) >/dev/null || { echo "Go is needed: install the Go version go.mod names at /usr/local/go"; exit 1; }

test-deps: deps
	@missing=$$(for p in $(DEB_TEST_PACKAGES); do command -v $${p%js} >/dev/null 2>&1 && continue; dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; fi
	@node -e 'const [a,b,c]=process.versions.node.split(".").map(Number),[x,y,z]="$(NODE_MIN)".split(".").map(Number); process.exit(a>x||(a==x&&(b>y||(b==y&&c>=z)))?0:1)' || \
		{ echo "the E2B SDK tests need Node.js $(NODE_MIN) or later (this is $$(node --version)): install it, for example from NodeSource"; exit 1; }

build: dashboard
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o bin/paddock ./cmd/paddock
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -ldflags "$(LDFLAGS)" -o bin/paddock-agent ./cmd/paddock-agent

# The dashboard's bundle, embedded by go build: npm ci into a cache keyed by
# the lock file (linked as web/dashboard/node_modules), tsc checks the
# TypeScript, esbuild bundles it into internal/dashboard/assets.
dashboard:
	@command -v npm >/dev/null || { echo "npm is needed to build the dashboard: make deps installs it"; exit 1; }
	@if [ ! -e $(DASHBOARD_NPM)/node_modules/.bin/esbuild ]; then \
		echo "npm ci (web/dashboard) into $(DASHBOARD_NPM)"; \
		rm -rf $(DASHBOARD_NPM).tmp && mkdir -p $(DASHBOARD_NPM).tmp && \
		cp $(DASHBOARD)/package.json $(DASHBOARD)/package-lock.json $(DASHBOARD_NPM).tmp/ && \
		(cd $(DASHBOARD_NPM).tmp && npm ci --no-audit --no-fund --loglevel=error) && \
		rm -rf $(DASHBOARD_NPM) && mv $(DASHBOARD_NPM).tmp $(DASHBOARD_NPM); \
	fi
	@ln -sfn $(DASHBOARD_NPM)/node_modules $(DASHBOARD)/node_modules
	cd $(DASHBOARD) && node_modules/.bin/tsc -p . && \
		node_modules/.bin/esbuild src/main.ts --bundle --minify --target=es2022 --log-level=warning --outfile=../../internal/dashboard/assets/app.js

# Templates are cached under PADDOCK_HOME keyed by their recipe: a second
# build with the same recipe returns at once.
templates: build
	$(PADDOCK) template build tiny
	$(PADDOCK) template build debian
	@# One agent preset of paddock run: debian + the agent's CLI from npm
	@# (~3 min on a cold cache; test/e2e/run_test.go). The other presets are
	@# built and tested by test-agents.
	$(PADDOCK) template build claude

demo: deps build
	$(PADDOCK) template build debian
	@$(PADDOCK) rm -f demo >/dev/null 2>&1 || true
	$(PADDOCK) create --name demo --workspace .
	$(PADDOCK) exec demo -- sh -c 'echo "hello from $$(hostname), kernel $$(uname -r), as $$(id -un) in $$(pwd)"; ls | head'
	@echo "the sandbox 'demo' is running: try  bin/paddock exec -it demo -- bash   and   bin/paddock rm -f demo"

vet:
	$(GO) vet ./...
	$(GO) vet -tags agents ./test/e2e
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Every test, real VMs included, but for the codex and gemini presets'
# (test-agents). The VM tests use the templates built by
# the templates target (in PADDOCK_HOME, or the default home) and their
# own temporary PADDOCK_HOME for sandboxes.
# The output is also kept in bin/test.log; when a test fails, its failure
# lines are printed again at the end, where a CI log's tail shows them.
test: test-deps build templates vet
	@set -o pipefail; PADDOCK_BIN=$(CURDIR)/bin/paddock $(if $(PADDOCK_HOME),PADDOCK_TEMPLATES_HOME=$(PADDOCK_HOME)) \
		$(GO) test -count=1 -timeout 75m ./... 2>&1 | tee bin/test.log || { \
		echo "=== what failed (all of it is in bin/test.log)"; \
		grep -E -- '^(--- FAIL|FAIL|panic:)|^ +[a-z0-9_]+_test\.go:[0-9]+: ' bin/test.log | grep -vE 'go:[0-9]+: paddock .* \([0-9.]+(ms|s|m[0-9.]+s)\)$$' | cut -c1-400 | head -60; \
		exit 1; }
	$(MAKE) fuzz

# The agent presets make test leaves out (codex, gemini): their templates,
# debian + the agent's CLI from npm (~3 min each on a cold cache), and
# their tests (-tags agents: test/e2e/run_agents_test.go). CI runs both.
test-agents: test-deps build
	$(PADDOCK) template build codex
	$(PADDOCK) template build gemini
	PADDOCK_BIN=$(CURDIR)/bin/paddock $(if $(PADDOCK_HOME),PADDOCK_TEMPLATES_HOME=$(PADDOCK_HOME)) $(GO) test -count=1 -timeout 20m -tags agents -run '^TestRunAgentVersionsCodexGemini$$' ./test/e2e

# Each fuzz target over the parsers of untrusted bytes, for FUZZTIME; a
# crash it finds is saved under testdata/fuzz and then fails go test as a
# regression test. A run that fails without a crasher (the fuzzing engine's
# own trouble, such as a worker it lost on a loaded host) is shown and
# tried once more.
FUZZTIME ?= 5s
FUZZ_TARGETS = FuzzSniffName:./internal/usernet FuzzServeDNS:./internal/usernet FuzzLinkFrames:./internal/usernet \
	FuzzParse:./internal/netpolicy FuzzExtract:./internal/template/oci
fuzz:
	@mkdir -p bin; for t in $(FUZZ_TARGETS); do \
		name=$${t%%:*}; pkg=$${t#*:}; \
		for try in 1 2; do \
			echo "fuzz $$name ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg > bin/fuzz.log 2>&1 && break; \
			if grep -q 'Failing input written to' bin/fuzz.log || [ $$try = 2 ]; then \
				tail -40 bin/fuzz.log; $(GO) test -run "^$$name$$" $$pkg; exit 1; \
			fi; \
			echo "the fuzzing engine failed without a crasher; once more:"; tail -15 bin/fuzz.log; \
		done; \
	done

proto:
	@dpkg-query -W -f='$${Status}\n' protobuf-compiler 2>/dev/null | grep -q 'install ok installed' || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq protobuf-compiler >/dev/null; }
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
	$(GO) install github.com/containerd/ttrpc/cmd/protoc-gen-go-ttrpc@v1.2.10
	$(GO) install connectrpc.com/connect/cmd/protoc-gen-connect-go@v1.21.1
	PATH=$$($(GO) env GOPATH)/bin:$$PATH ./api/generate.sh

clean:
	rm -rf bin
	rm -f internal/dashboard/assets/app.js internal/dashboard/assets/app.css $(DASHBOARD)/node_modules
