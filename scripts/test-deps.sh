#!/usr/bin/env bash
# Installs, from the distribution's packages, the programs the tests use and
# that a fresh machine may lack: tcpdump (an independent reader of the pcap
# files), chromium (opens the HTML report), curl and python3 (real
# third-party client and server), xmllint (checks the JUnit files against
# their schema). tcplab itself needs none of them.
# Run as root; prints what it installs; does nothing when all are present.
# With --packages it only prints the package names, one a line, whether
# installed or not (vagrant/provision.sh installs them when it provisions).
set -euo pipefail

# command:package
pairs=(tcpdump:tcpdump chromium:chromium curl:curl python3:python3 xmllint:libxml2-utils)

if [ "${1:-}" = --packages ]; then
	for pair in "${pairs[@]}"; do
		printf '%s\n' "${pair#*:}"
	done
	exit 0
fi

missing=()
for pair in "${pairs[@]}"; do
	command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
	echo "test-deps: install ${missing[*]} to run every test (no apt-get here)" >&2
	exit 1
fi
if [ "$(id -u)" != 0 ]; then
	echo "test-deps: installing ${missing[*]} needs root" >&2
	exit 1
fi
echo "test-deps: installing ${missing[*]}"
log=$(mktemp)
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
	cat "$log" >&2
	rm -f "$log"
	exit 1
fi
rm -f "$log"
