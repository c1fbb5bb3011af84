#!/usr/bin/env bash
# Static checks of the Vagrant test setup, called by .ci/run (as root, on a
# Debian-like machine with apt):
#   1. bash -n on the scripts;
#   2. shellcheck on the scripts (installed from the distribution if missing);
#   3. vagrant validate on vagrant/Vagrantfile: vagrant (and, when that works,
#      the vagrant-libvirt plugin, so that its provider options are checked
#      too) is installed from the distribution if missing. If vagrant cannot be
#      had, this step is skipped with a reason; it is the only one that may be;
#   4. actionlint on .github/workflows (built with go install from the Go
#      module proxy; Debian packages none).
# apt's output goes to a temporary file, printed only when apt fails.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts=(vagrant/provision.sh vagrant/test.sh vagrant/kernel-matrix.sh scripts/test-deps.sh .ci/vagrant-check.sh)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
apt_log=$work/apt.log

say() { printf 'vagrant-check: %s\n' "$*"; }
fail() {
	say "FAIL: $*" >&2
	exit 1
}

apt_updated=0
# apt_install PACKAGE...: install quietly; on failure print apt's log.
apt_install() {
	if ! command -v apt-get >/dev/null; then
		echo "apt-get not found" >>"$apt_log"
		return 1
	fi
	if [[ $apt_updated == 0 ]]; then
		if ! apt-get update -q >>"$apt_log" 2>&1; then
			cat "$apt_log" >&2
			return 1
		fi
		apt_updated=1
	fi
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends "$@" >>"$apt_log" 2>&1; then
		cat "$apt_log" >&2
		return 1
	fi
}

# 1. syntax
bash -n vagrant/provision.sh vagrant/test.sh scripts/test-deps.sh
bash -n .ci/vagrant-check.sh
say "bash -n: ok"

# 2. shellcheck
if ! command -v shellcheck >/dev/null; then
	apt_install shellcheck || fail "could not install shellcheck"
fi
shellcheck "${scripts[@]}" || fail "shellcheck reported problems"
say "shellcheck $(shellcheck --version | sed -n 's/^version: //p'): ok"

# 3. vagrant validate
skip=""
if ! command -v vagrant >/dev/null; then
	# vagrant-libvirt lets validate check the libvirt provider's options.
	if apt_install vagrant vagrant-libvirt >/dev/null 2>&1 ||
		apt_install vagrant >/dev/null 2>&1; then
		:
	elif ! command -v apt-get >/dev/null; then
		skip="vagrant is not installed and apt-get is not available"
	else
		reason=$({ grep -E '^E:' "$apt_log" || echo "see apt's log above"; } | tail -n 1)
		tail -n 15 "$apt_log" | sed 's/^/    apt: /'
		skip="apt-get install vagrant failed: $reason"
	fi
fi
if [[ -n $skip ]]; then
	say "vagrant validate skipped: $skip"
	exit 0
fi

# Keep validate away from the network and the working tree.
export VAGRANT_CHECKPOINT_DISABLE=1
export VAGRANT_DOTFILE_PATH=$work/dotfile
unset VAGRANT_CWD VAGRANT_VAGRANTFILE VAGRANT_DEFAULT_PROVIDER VAGRANT_BOX VAGRANT_MEMORY VAGRANT_CPUS \
	LIBVIRT_DRIVER LIBVIRT_CPU_MODE LIBVIRT_CPU_MODEL VAGRANT_CA_DIR

vagrant_version=$(vagrant --version)
# Without a provider plugin for the VM (or the hypervisor itself), validate
# refuses to load the Vagrantfile unless told to ignore provider options.
validate_args=()
if vagrant validate --help 2>/dev/null | grep -e '--ignore-provider' >/dev/null; then
	validate_args=(--ignore-provider)
fi

# validate [NAME=VALUE...]: vagrant validate in vagrant/ with these variables
# set; its output is shown only on failure.
validate() {
	local out=$work/validate.out
	if ! (cd vagrant && env "$@" vagrant validate ${validate_args[@]+"${validate_args[@]}"}) \
		>"$out" 2>&1; then
		cat "$out" >&2
		return 1
	fi
}

validate || fail "vagrant validate (defaults)"

# The same with every override set, extra CA files included.
ca_dir=$work/ca
mkdir -p "$ca_dir"
printf 'not a real certificate\n' >"$ca_dir/example.pem"
overrides=(VAGRANT_BOX=local/bookworm VAGRANT_MEMORY=4096 VAGRANT_CPUS=1
	LIBVIRT_DRIVER=qemu LIBVIRT_CPU_MODE=custom LIBVIRT_CPU_MODEL=qemu64
	"VAGRANT_CA_DIR=$ca_dir" http_proxy=http://proxy.invalid:3128
	https_proxy=http://proxy.invalid:3128 "no_proxy=localhost,127.0.0.1"
	TCPLAB_INSTALL_BUILD_ESSENTIAL=1)
validate "${overrides[@]}" || fail "vagrant validate (with overrides)"

# Bad values must be refused.
for bad in VAGRANT_MEMORY=lots VAGRANT_CPUS=0 LIBVIRT_DRIVER=xen VAGRANT_CA_DIR=/nonexistent; do
	if validate "$bad" 2>/dev/null; then
		fail "vagrant validate accepted $bad"
	fi
done

# With the libvirt plugin, check its provider options for real.
if vagrant plugin list 2>/dev/null | grep -E '^vagrant-libvirt ' >/dev/null; then
	validate_args=()
	validate VAGRANT_DEFAULT_PROVIDER=libvirt ||
		fail "vagrant validate (libvirt provider)"
	validate VAGRANT_DEFAULT_PROVIDER=libvirt "${overrides[@]}" ||
		fail "vagrant validate (libvirt provider, with overrides)"
	say "vagrant validate ($vagrant_version; libvirt provider options included): ok"
else
	say "vagrant validate ($vagrant_version${validate_args[*]:+; ${validate_args[*]}}): ok"
fi

# 4. actionlint on the GitHub Actions workflows (with shellcheck on their
# scripts), built from the Go module proxy: Debian packages no actionlint.
gobin=$work/gobin
go=$(command -v go || echo /usr/local/go/bin/go)
if GOBIN=$gobin "$go" install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12 >>"$work/actionlint.log" 2>&1; then
	"$gobin/actionlint" .github/workflows/*.yml || fail "actionlint"
	say "actionlint 1.7.12: ok"
else
	cat "$work/actionlint.log" >&2
	fail "could not build actionlint"
fi
