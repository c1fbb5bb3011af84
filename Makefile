# Works as root, and through sudo from a normal user: sudo's secure PATH
# usually lacks Go, so fall back to the standard install location.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
# Privileged steps need root: use sudo only when not root already.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BIN ?= ./tcplab
CASE ?= all
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
TESTFLAGS ?=
# go test -parallel: how many tests of one package run at once (vagrant/test.sh
# sets it from the VM's CPU count).
PARALLEL ?= 20

.PHONY: build test lint run clean vagrant-test

build:
	$(GO) build -tags urfave_cli_no_docs -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/tcplab

# Privileged tests build real namespaces: the test binaries run as root.
# The programs some tests use are installed first if missing.
test:
	$(SUDO) bash scripts/test-deps.sh
	$(GO) test $(if $(SUDO),-exec sudo) -count=1 -parallel $(PARALLEL) $(TESTFLAGS) ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

run: build
	$(SUDO) $(BIN) run $(CASE)

clean:
	rm -f $(BIN)

vagrant-test:
	bash vagrant/test.sh
