#!/usr/bin/env bash
# Runs the tcplab test suite as root inside the Vagrant VM (`make vagrant-test`).
#
#   1. vagrant up (provider: VAGRANT_DEFAULT_PROVIDER if set), then vagrant rsync
#      so that the VM has the current working tree at /vagrant;
#   2. in the VM: make test, as root, output kept in /tmp/tcplab-test.log;
#   3. in the VM: make build and ./tcplab run all --json, as root, into
#      /tmp/tcplab-run-all.json (a failure here is recorded, never turned into
#      the script's exit status);
#   4. copies the results to vagrant/results/ on the host;
#   5. vagrant destroy -f if VAGRANT_DESTROY=1, else the VM stays up.
#
# Exit status: that of `make test` in the VM (or of vagrant, if the VM could
# not be brought up). VAGRANT_PROVISION=1 provisions an existing VM again.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
results=$here/results
cd "$here"

say() { printf '==> vagrant-test: %s\n' "$*" >&2; }

if ! command -v vagrant >/dev/null 2>&1; then
	say "vagrant is not installed (see vagrant/README.md)"
	exit 2
fi

# Called from the EXIT trap.
# shellcheck disable=SC2317
cleanup() {
	if [ "${VAGRANT_DESTROY:-0}" = 1 ]; then
		say "VAGRANT_DESTROY=1: destroying the VM"
		vagrant destroy -f || say "warning: vagrant destroy failed"
	fi
}
trap cleanup EXIT

up_args=()
if [ -n "${VAGRANT_DEFAULT_PROVIDER:-}" ]; then
	up_args+=(--provider "$VAGRANT_DEFAULT_PROVIDER")
fi
if [ "${VAGRANT_PROVISION:-0}" = 1 ]; then
	up_args+=(--provision)
fi

say "vagrant up ${up_args[*]+${up_args[*]}}"
vagrant up ${up_args[@]+"${up_args[@]}"}
say "vagrant rsync (current working tree to /vagrant)"
vagrant rsync

# in_vm CMD: run CMD with bash in the VM, without a TTY, so that its output
# reaches us byte for byte (a TTY would turn \n into \r\n).
in_vm() {
	vagrant ssh -c "$1" -- -T
}

# The commands below are expanded in the VM, not here. sudo -E keeps the
# proxy settings; HOME=/root makes Go use root's module cache, where
# provisioning put the toolchain that go.mod asks for.
# shellcheck disable=SC2016
as_root='sudo -E env "PATH=$PATH" HOME=/root GOTOOLCHAIN=auto'

test_cmd='cd /vagrant && rm -f /tmp/tcplab-test.log && set -o pipefail &&
'"$as_root"' make test 2>&1 | tee /tmp/tcplab-test.log'

run_all_cmd='cd /vagrant && rm -f /tmp/tcplab-run-all.json /tmp/tcplab-run-all.log &&
'"$as_root"' make build >/tmp/tcplab-run-all.log 2>&1 &&
'"$as_root"' ./tcplab run all --json >/tmp/tcplab-run-all.json 2>>/tmp/tcplab-run-all.log'

say "make test (as root, in the VM)"
if in_vm "$test_cmd"; then test_status=0; else test_status=$?; fi
say "make test exited with status $test_status"

say "make build && ./tcplab run all --json (as root, in the VM)"
if in_vm "$run_all_cmd"; then run_all_status=0; else run_all_status=$?; fi
say "run all exited with status $run_all_status"

say "copying results to $results"
mkdir -p "$results"
rm -f "$results"/tcplab-test.log "$results"/tcplab-run-all.json \
	"$results"/tcplab-run-all.log "$results"/summary.txt
copy_status=0
for f in tcplab-test.log tcplab-run-all.json tcplab-run-all.log; do
	if ! in_vm "cat /tmp/$f" >"$results/$f"; then
		say "warning: could not copy /tmp/$f from the VM"
		rm -f "$results/$f"
		copy_status=1
	fi
done
kernel=$(in_vm 'uname -r' 2>/dev/null) || kernel=unknown
go_version=$(in_vm "cd /vagrant && $as_root go version" 2>/dev/null) ||
	go_version=unknown
{
	printf 'box: %s\n' "${VAGRANT_BOX:-debian/bookworm64}"
	printf 'provider: %s\n' "${VAGRANT_DEFAULT_PROVIDER:-vagrant default}"
	printf 'kernel: %s\n' "$kernel"
	printf 'go: %s\n' "$go_version"
	printf 'make test: exit status %s\n' "$test_status"
	printf 'run all --json: exit status %s\n' "$run_all_status"
	printf 'copy: %s\n' "$([ "$copy_status" = 0 ] && echo complete || echo incomplete)"
} >"$results/summary.txt"
sed 's/^/    /' "$results/summary.txt" >&2

exit "$test_status"
