# Works as root, and through sudo from a normal user: sudo's secure PATH
# usually lacks Go, so fall back to the standard install location.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
# Privileged steps need root: use sudo only when not root already.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BIN ?= ./tcplab
CASE ?= first
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
TESTFLAGS ?=
# go test -parallel: how many tests of one package run at once (vagrant/test.sh
# sets it from the VM's CPU count).
PARALLEL ?= 20

.PHONY: build test lint run kernel-defaults kernel-matrix clean vagrant-test

# A static binary (no cgo): it starts faster (no dynamic loader) and runs
# on any Linux of the architecture, such as the kernel matrix's VMs.
build:
	CGO_ENABLED=0 $(GO) build -tags urfave_cli_no_docs -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/tcplab

# Privileged tests build real namespaces: the test binaries run as root.
# The programs some tests use are installed first if missing. One package
# at a time (-p 1): some tests leave broken labs on purpose and others run
# the machine-wide `tcplab clean`; in two test processes at once the one
# would remove the other's (within a package, parallel tests wait for the
# sequential ones).
test:
	$(SUDO) bash scripts/test-deps.sh
	$(GO) test $(if $(SUDO),-exec sudo) -count=1 -p 1 -parallel $(PARALLEL) $(TESTFLAGS) ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

run: build
	$(SUDO) $(BIN) run $(CASE)

# The whole catalogue with the kernel's own timers, both families, every
# case at once: about 16 minutes (the longest cases wait out tcp_retries2's
# 15.4 minutes). The report goes to kernel-defaults.txt and .html; the
# closing table is printed.
kernel-defaults: build
	$(SUDO) $(BIN) run all --kernel-defaults --family both --parallel 64 --html kernel-defaults.html > kernel-defaults.txt; \
	status=$$?; sed -n '/^kernel /,$$p' kernel-defaults.txt; exit $$status

clean:
	rm -f $(BIN)

vagrant-test:
	bash vagrant/test.sh

# The catalogue and the ICMP matrix on several kernels (VMs of the boxes in
# KERNEL_BOXES, and this host); writes docs/kernels.md. See vagrant/README.md.
kernel-matrix: build
	bash vagrant/kernel-matrix.sh
