# hactl — see README.md. Every target that needs packages installs them
# (scripts/install-deps.sh) so a fresh Debian machine only needs Go.

GO       ?= go
BIN      := bin/hactl
VERSION  := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
# The whole suite must stay well under 20 minutes on 2 cores.
TEST_TIMEOUT ?= 20m
STATICCHECK  := $(shell $(GO) env GOPATH)/bin/staticcheck

.PHONY: all build deps test unit demo bench lint fuzz clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/hactl

deps:
	./scripts/install-deps.sh
	$(GO) mod download

# Unit tests and the root-only integration tests (network namespaces,
# loop devices, keepalived); the latter skip with a message when not root.
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

# Only the tests that need neither root nor packages.
unit:
	$(GO) test -count=1 -short ./...

demo: deps build
	./scripts/demo.sh $(BIN)

bench: deps build
	./scripts/bench.sh

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt would change:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	@test -x $(STATICCHECK) || $(GO) install honnef.co/go/tools/cmd/staticcheck@latest
	$(STATICCHECK) ./...

# Run every fuzz target for FUZZTIME each (seed corpora run in `make test`).
FUZZTIME ?= 30s
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

clean:
	rm -rf bin
