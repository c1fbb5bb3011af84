#!/usr/bin/env bash
# Runs the whole catalogue, both families, and the ICMP matrix on several
# kernels (`make kernel-matrix`): in a VM of each box in KERNEL_BOXES, then
# on this host, and writes docs/kernels.md from the results.
#
#   KERNEL_BOXES   boxes to boot, one VM each (default "local/bookworm local/trixie";
#                  empty: none, this host alone)
#   VAGRANT_DEFAULT_PROVIDER, LIBVIRT_DRIVER, VAGRANT_CPUS, VAGRANT_MEMORY
#                  as for `make vagrant-test` (see README.md beside this file)
#   KERNEL_HOST=0  leave this host's kernel out
#
# Each box gets a machine of its own (a .vagrant directory per box under
# results/kernels/), destroyed afterwards unless KERNEL_KEEP=1. The VMs are
# not provisioned: what is measured is the kernel, and tcplab needs nothing
# at run time but itself, so a static binary built here is uploaded and run
# (no Go, no packages, no build in the VM). Results:
# results/kernels/KERNEL.json (run all) and KERNEL-matrix.json, and
# results/kernels/summary.txt with each kernel's uname -r and step times.
# Exit status: 0 when every kernel gave match everywhere.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
out=$here/results/kernels
mkdir -p "$out"
say() { printf '==> kernel-matrix: %s\n' "$*" >&2; }

# Unset: the default boxes; set but empty: none (the host alone).
boxes=${KERNEL_BOXES-local/bookworm local/trixie}
status=0
# The summary keeps the lines of kernels this run does not redo, so one box
# (or the host) can be run again without losing the others' record.
summary=$out/summary.txt
touch "$summary"
redo=()
for box in $boxes; do redo+=("$box:"); done
[ "${KERNEL_HOST:-1}" = 1 ] && redo+=("host:")
for prefix in ${redo[@]+"${redo[@]}"}; do
	grep -vF -- "$prefix" "$summary" >"$summary.tmp" || true
	mv "$summary.tmp" "$summary"
done

# One binary for every kernel: `make build` makes it static (no cgo), so it
# does not depend on the guest's C library.
bin=$out/tcplab
say "building tcplab ($bin)"
make -C "$root" --no-print-directory build BIN="$bin" >&2
run_cmd='cd /tmp &&
(sudo /tmp/tcplab run all --family both --json >/tmp/km-run.json 2>/tmp/km-run.log; echo $? >/tmp/km-run.status);
(sudo /tmp/tcplab matrix --json >/tmp/km-matrix.json 2>/tmp/km-matrix.log; echo $? >/tmp/km-matrix.status)'

for box in $boxes; do
	name=$(printf '%s' "$box" | tr -c 'a-zA-Z0-9\n' '-')
	export VAGRANT_DOTFILE_PATH=$out/.vagrant-$name VAGRANT_BOX=$box
	cd "$here"
	t0=$(date +%s)
	say "$box: vagrant up"
	up_args=(--no-provision)
	[ -n "${VAGRANT_DEFAULT_PROVIDER:-}" ] && up_args+=(--provider "$VAGRANT_DEFAULT_PROVIDER")
	if ! vagrant up "${up_args[@]}"; then
		say "$box: vagrant up failed"
		printf '%s: vagrant up failed\n' "$box" >>"$summary"
		status=1
		continue
	fi
	# Streamed over ssh rather than `vagrant upload`, which needs an scp
	# binary in the guest (Debian 14's minimal system has none).
	vagrant ssh -c 'cat >/tmp/tcplab && chmod 755 /tmp/tcplab' -- -T <"$bin"
	t1=$(date +%s)
	say "$box: run all --family both, matrix (in the VM)"
	vagrant ssh -c "$run_cmd" -- -T || true
	t2=$(date +%s)
	kernel=$(vagrant ssh -c 'uname -r' -- -T | tr -d '\r')
	vagrant ssh -c 'cat /tmp/km-run.json' -- -T >"$out/$kernel.json"
	vagrant ssh -c 'cat /tmp/km-matrix.json' -- -T >"$out/$kernel-matrix.json"
	rs=$(vagrant ssh -c 'cat /tmp/km-run.status' -- -T | tr -d '\r')
	ms=$(vagrant ssh -c 'cat /tmp/km-matrix.status' -- -T | tr -d '\r')
	printf '%s: kernel %s; up+upload %ds, run all + matrix %ds; run all exit %s, matrix exit %s\n' \
		"$box" "$kernel" $((t1 - t0)) $((t2 - t1)) "$rs" "$ms" >>"$summary"
	[ "$rs" = 0 ] && [ "$ms" = 0 ] || status=1
	if [ "${KERNEL_KEEP:-0}" != 1 ]; then vagrant destroy -f || true; fi
done
unset VAGRANT_DOTFILE_PATH

if [ "${KERNEL_HOST:-1}" = 1 ]; then
	cd "$root"
	kernel=$(uname -r)
	say "this host ($kernel): run all --family both, matrix"
	t0=$(date +%s)
	rs=0 ms=0
	./tcplab run all --family both --json >"$out/$kernel.json" || rs=$?
	./tcplab matrix --json >"$out/$kernel-matrix.json" || ms=$?
	printf 'host: kernel %s; run all + matrix %ds; run all exit %s, matrix exit %s\n' \
		"$kernel" $(($(date +%s) - t0)) "$rs" "$ms" >>"$summary"
	[ "$rs" = 0 ] && [ "$ms" = 0 ] || status=1
fi

cd "$root"
runs=()
for f in "$out"/*.json; do
	case $f in *-matrix.json) continue ;; esac
	runs+=("vagrant/results/kernels/$(basename "$f")")
done
go run ./scripts/kernels "${runs[@]}" >docs/kernels.md
say "wrote docs/kernels.md from ${runs[*]}"
sed 's/^/    /' "$summary" >&2
exit "$status"
