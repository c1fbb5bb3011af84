#!/usr/bin/env bash
# Times `tcplab up --name X` + `tcplab down X`, as two whole processes,
# against bench/baseline-iproute2.sh building and removing the same lab with
# one iproute2 command per step, in one run, alternating the two, and prints
# the median and spread of each and their ratio.
#
# Usage: sudo bench/compare.sh [N]     (N iterations of each, default 50)
#
# It builds tcplab into a temporary directory first (or times the binary
# named by TCPLAB_BIN), and installs iproute2 with apt-get if `ip` is
# missing (for the baseline only). Nothing touches the host's network
# namespace.
set -euo pipefail

n=${1:-50}
case $n in '' | *[!0-9]*) echo "usage: $0 [N]" >&2; exit 2 ;; esac
[ "$n" -ge 1 ] || { echo "$0: N must be at least 1" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "$0: needs root (network namespaces); run it with sudo" >&2; exit 2; }

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
baseline=$here/baseline-iproute2.sh

if ! command -v ip >/dev/null; then
	echo "installing iproute2 for the baseline..." >&2
	apt-get install -y -qq iproute2 >/dev/null 2>&1 ||
		{ apt-get update -qq >/dev/null && apt-get install -y -qq iproute2 >/dev/null; }
fi

go=$(command -v go || echo /usr/local/go/bin/go)
tmp=$(mktemp -d)
if [ -n "${TCPLAB_BIN:-}" ]; then
	tcplab=$(cd "$(dirname "$TCPLAB_BIN")" && pwd)/$(basename "$TCPLAB_BIN")
else
	tcplab=$tmp/tcplab
	(cd "$repo" && "$go" build -o "$tcplab" ./cmd/tcplab)
fi

# Lab names: tcplab's and the baseline's never collide, and a leftover of
# an earlier run cannot collide with them either.
tag=$(od -An -N2 -tx2 /dev/urandom | tr -d ' ')
tname=cmp$tag
bname=b$tag

cleanup() {
	"$tcplab" down "$tname" >/dev/null 2>&1 || true
	"$baseline" clean "$bname" || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# now VAR sets VAR to the time in microseconds, read in this shell from
# bash's own clock: no process per reading. (`a=$(now)` would fork a
# subshell for each reading, about 0.7 ms here, and part of that fork
# would fall inside the interval timed.) `date +%s%N` (a fork and exec,
# about 1 ms here) is the fallback for older shells.
if [ -n "${EPOCHREALTIME:-}" ]; then
	now() { local t=${EPOCHREALTIME/[.,]/}; printf -v "$1" %d $((10#$t)); }
	# shellcheck disable=SC2016 # the variable's name, not its value
	timer='bash $EPOCHREALTIME (µs), read without a subshell'
else
	now() { printf -v "$1" %d $(($(date +%s%N) / 1000)); }
	timer='date +%s%N'
fi

tu=() td=() tt=() bu=() bd=() bt=()

run_tcplab() {
	local a b c
	now a
	"$tcplab" up --name "$tname" >/dev/null
	now b
	"$tcplab" down "$tname" >/dev/null
	now c
	tu+=($((b - a))) td+=($((c - b))) tt+=($((c - a)))
}

run_baseline() {
	local a b c
	now a
	"$baseline" up "$bname"
	now b
	"$baseline" down "$bname"
	now c
	bu+=($((b - a))) bd+=($((c - b))) bt+=($((c - a)))
}

load=$(cut -d' ' -f1-3 /proc/loadavg)

# One untimed round of each: binaries and libraries in the page cache.
run_tcplab
run_baseline
tu=() td=() tt=() bu=() bd=() bt=()

# Alternate, and alternate which goes first, so that neither always follows
# the other (the kernel frees a deleted namespace in the background).
for ((i = 0; i < n; i++)); do
	if ((i % 2 == 0)); then
		run_tcplab
		run_baseline
	else
		run_baseline
		run_tcplab
	fi
done

# stats VALUES...: "median p10 p90 min max" in microseconds.
stats() {
	printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END {
		i = int((NR + 1) / 2); p10 = int(NR * 0.1 + 0.5); p90 = int(NR * 0.9 + 0.5)
		if (p10 < 1) p10 = 1; if (p90 < 1) p90 = 1
		print v[i], v[p10], v[p90], v[1], v[NR] }'
}

fmt() { # fmt "median p10 p90 min max" -> "  7.61 ms [6.90-9.12, 6.50-13.20]"
	awk -v s="$1" 'BEGIN { split(s, v, " ");
		printf "%7.2f ms  [p10-p90 %6.2f-%6.2f, min-max %6.2f-%6.2f]", v[1]/1000, v[2]/1000, v[3]/1000, v[4]/1000, v[5]/1000 }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.1fx", x[1] / y[1] }'; }

s_tu=$(stats "${tu[@]}") s_td=$(stats "${td[@]}") s_tt=$(stats "${tt[@]}")
s_bu=$(stats "${bu[@]}") s_bd=$(stats "${bd[@]}") s_bt=$(stats "${bt[@]}")

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
echo "machine:   $(nproc) CPUs, ${cpu:-unknown CPU}, $mem; Linux $(uname -r)"
echo "software:  $("$go" version | cut -d' ' -f3), $(ip -V | sed 's/^ip utility, //')"
echo "run:       $n iterations of each, alternating; timer: $timer; load average before: $load"
echo
echo "tcplab up + down (two processes)"
echo "  up       $(fmt "$s_tu")"
echo "  down     $(fmt "$s_td")"
echo "  total    $(fmt "$s_tt")"
echo "iproute2 script (bench/baseline-iproute2.sh up, then down)"
echo "  up       $(fmt "$s_bu")"
echo "  down     $(fmt "$s_bd")"
echo "  total    $(fmt "$s_bt")"
echo
echo "ratio of medians, script / tcplab: up $(ratio "$s_bu" "$s_tu"), down $(ratio "$s_bd" "$s_td"), total $(ratio "$s_bt" "$s_tt")"
