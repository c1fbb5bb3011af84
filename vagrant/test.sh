#!/usr/bin/env bash
# Runs the tcplab test suite as root inside the Vagrant VM (`make vagrant-test`).
#
#   1. vagrant up --no-provision (provider: VAGRANT_DEFAULT_PROVIDER if set);
#   2. vagrant provision, when provisioning has not yet completed in this VM
#      (provision.sh leaves /var/lib/tcplab/provisioned when it succeeds) or
#      when VAGRANT_PROVISION=1;
#   3. vagrant rsync, so that the VM has the current working tree at /vagrant;
#   4. in the VM: make test PARALLEL=N, as root, output kept in
#      /tmp/tcplab-test.log; N (go test -parallel) is VAGRANT_TEST_PARALLEL,
#      by default the VM's CPU count;
#   5. in the VM: make build and ./tcplab run all --json, as root, into
#      /tmp/tcplab-run-all.json (a failure here is recorded, never turned into
#      the script's exit status);
#   6. copies the results to vagrant/results/ on the host, with summary.txt:
#      box, provider, system, kernel (uname -r), CPUs, Go, parallelism, exit
#      statuses and the time each step took;
#   7. vagrant destroy -f if VAGRANT_DESTROY=1, else the VM stays up.
#
# Exit status: that of `make test` in the VM (or of vagrant, if the VM could
# not be brought up or provisioned).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
results=$here/results
cd "$here"

say() { printf '==> vagrant-test: %s\n' "$*" >&2; }

if ! command -v vagrant >/dev/null 2>&1; then
	say "vagrant is not installed (see vagrant/README.md)"
	exit 2
fi

parallel=${VAGRANT_TEST_PARALLEL:-}
if [ -n "$parallel" ] && ! [[ $parallel =~ ^[1-9][0-9]*$ ]]; then
	say "VAGRANT_TEST_PARALLEL must be a positive integer, got '$parallel'"
	exit 2
fi

# in_vm CMD: run CMD with bash in the VM, without a TTY, so that its output
# reaches us byte for byte (a TTY would turn \n into \r\n).
in_vm() {
	vagrant ssh -c "$1" -- -T
}

# duration SECONDS: as 1m05s.
duration() {
	printf '%dm%02ds' $(($1 / 60)) $(($1 % 60))
}

# step NAME CMD...: run CMD, and record how long it took (and its exit status
# when not 0) under NAME for summary.txt. Returns CMD's exit status.
times=()
step() {
	local name=$1 start=$SECONDS status=0 line
	shift
	"$@" || status=$?
	line=$(printf '%-13s %s' "$name:" "$(duration $((SECONDS - start)))")
	if [ "$status" != 0 ]; then
		line+=" (exit status $status)"
	fi
	times+=("$line")
	return "$status"
}

test_status="not run"
run_all_status="not run"
copy_status="not done"
vm_info=""
go_version=unknown

# status_text STATUS: "exit status N" for a number, else STATUS as it is.
# shellcheck disable=SC2317
status_text() {
	case $1 in
	[0-9]*) printf 'exit status %s' "$1" ;;
	*) printf '%s' "$1" ;;
	esac
}

# Called from finish, the EXIT trap.
# shellcheck disable=SC2317
write_summary() {
	mkdir -p "$results"
	{
		printf 'box: %s\n' "${VAGRANT_BOX:-debian/bookworm64}"
		printf 'provider: %s\n' "${VAGRANT_DEFAULT_PROVIDER:-vagrant default}"
		if [ "${VAGRANT_DEFAULT_PROVIDER:-}" = libvirt ] || [ -n "${LIBVIRT_DRIVER:-}" ]; then
			printf 'libvirt driver: %s\n' "${LIBVIRT_DRIVER:-kvm}"
		fi
		if [ -n "$vm_info" ]; then
			printf '%s\n' "$vm_info"
		else
			printf 'kernel: unknown (the VM did not answer)\n'
		fi
		printf 'go: %s\n' "$go_version"
		printf 'go test -parallel: %s\n' "${parallel:-not chosen}"
		printf 'make test: %s\n' "$(status_text "$test_status")"
		printf 'run all --json: %s\n' "$(status_text "$run_all_status")"
		printf 'copy: %s\n' "$copy_status"
		printf 'time:\n'
		if [ ${#times[@]} -gt 0 ]; then
			printf '  %s\n' "${times[@]}"
		fi
		printf '  %-13s %s\n' "total:" "$(duration "$SECONDS")"
	} >"$results/summary.txt"
	sed 's/^/    /' "$results/summary.txt" >&2
}

# Called from the EXIT trap.
# shellcheck disable=SC2317
finish() {
	write_summary
	if [ "${VAGRANT_DESTROY:-0}" = 1 ]; then
		say "VAGRANT_DESTROY=1: destroying the VM"
		vagrant destroy -f || say "warning: vagrant destroy failed"
	fi
}
trap finish EXIT

# Results of an earlier run must not pass for this one's.
mkdir -p "$results"
rm -f "$results"/tcplab-test.log "$results"/tcplab-run-all.json \
	"$results"/tcplab-run-all.log "$results"/summary.txt

up_args=(--no-provision)
if [ -n "${VAGRANT_DEFAULT_PROVIDER:-}" ]; then
	up_args+=(--provider "$VAGRANT_DEFAULT_PROVIDER")
fi

say "vagrant up ${up_args[*]}"
step up vagrant up "${up_args[@]}"

if [ "${VAGRANT_PROVISION:-0}" = 1 ]; then
	say "VAGRANT_PROVISION=1: vagrant provision"
	step provisioning vagrant provision
elif ! in_vm 'test -e /var/lib/tcplab/provisioned'; then
	say "not provisioned yet: vagrant provision"
	step provisioning vagrant provision
else
	times+=("$(printf '%-13s %s' "provisioning:" "none (done before)")")
fi

say "vagrant rsync (current working tree to /vagrant)"
step rsync vagrant rsync

# The VM's system, kernel and CPU count, for the summary and -parallel.
# shellcheck disable=SC2016
vm_info=$(in_vm '. /etc/os-release; printf "system: %s\nkernel: %s\ncpus: %s\n" \
	"${PRETTY_NAME:-unknown}" "$(uname -r)" "$(nproc)"' 2>/dev/null) || vm_info=""
if [ -z "$parallel" ]; then
	parallel=$(printf '%s\n' "$vm_info" | sed -n 's/^cpus: \([1-9][0-9]*\)$/\1/p')
	parallel=${parallel:-1}
fi

# The commands below are expanded in the VM, not here. sudo -E keeps the
# proxy settings; HOME=/root makes Go use root's module and build caches,
# where provisioning put the toolchain that go.mod asks for and the compiled
# packages.
# shellcheck disable=SC2016
as_root='sudo -E env "PATH=$PATH" HOME=/root GOTOOLCHAIN=auto'

go_version=$(in_vm "cd /vagrant && $as_root go version" 2>/dev/null) ||
	go_version=unknown

test_cmd='cd /vagrant && rm -f /tmp/tcplab-test.log && set -o pipefail &&
'"$as_root"' make test PARALLEL='"$parallel"' 2>&1 | tee /tmp/tcplab-test.log'

run_all_cmd='cd /vagrant && rm -f /tmp/tcplab-run-all.json /tmp/tcplab-run-all.log &&
'"$as_root"' make build >/tmp/tcplab-run-all.log 2>&1 &&
'"$as_root"' ./tcplab run all --json >/tmp/tcplab-run-all.json 2>>/tmp/tcplab-run-all.log'

say "make test PARALLEL=$parallel (as root, in the VM)"
if step tests in_vm "$test_cmd"; then test_status=0; else test_status=$?; fi
say "make test exited with status $test_status"

say "make build && ./tcplab run all --json (as root, in the VM)"
if step "run all" in_vm "$run_all_cmd"; then run_all_status=0; else run_all_status=$?; fi
say "run all exited with status $run_all_status"

say "copying results to $results"
copy_status=complete
for f in tcplab-test.log tcplab-run-all.json tcplab-run-all.log; do
	if ! in_vm "cat /tmp/$f" >"$results/$f"; then
		say "warning: could not copy /tmp/$f from the VM"
		rm -f "$results/$f"
		copy_status=incomplete
	fi
done

exit "$test_status"
