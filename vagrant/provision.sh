#!/usr/bin/env bash
# Provisions the tcplab test VM (Debian 12 by default). Runs as root, from the
# Vagrantfile's shell provisioner; safe to run again (`vagrant provision`).
#
# Environment (all optional; the Vagrantfile forwards them from the host):
#   http_proxy, https_proxy, no_proxy  proxy settings, kept for later logins
#   TCPLAB_INSTALL_BUILD_ESSENTIAL=1   force a C toolchain (otherwise only when
#                                      the Go code uses cgo or the Makefile -race)
#   TCPLAB_DEBIAN_MIRROR               Debian mirror URI for the backports line
#                                      (default: the one the box already uses)
#   TCPLAB_REPO                        repository path in the VM (/vagrant)
#
# Besides Go and the build tools it installs the programs the tests use
# (scripts/test-deps.sh --packages: tcpdump, chromium, curl, python3), so that
# `make test` in the VM installs nothing, and it fills Go's build cache for the
# tests and for tcplab, so that `make test` and `make build` only link.
#
# Extra CA certificates (PEM, *.crt or *.pem) are taken from
# $TCPLAB_REPO/vagrant/ca-certificates/ and from /tmp/tcplab-extra-ca/ (where
# the Vagrantfile uploads the files of the host's VAGRANT_CA_DIR).
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
REPO=${TCPLAB_REPO:-/vagrant}
MARK="# managed by tcplab vagrant/provision.sh"
# Left at the very end, when provisioning succeeded: vagrant/test.sh
# provisions again while it is missing.
DONE=/var/lib/tcplab/provisioned
rm -f "$DONE"

log() { printf '==> tcplab: %s\n' "$*"; }
die() { printf '==> tcplab: error: %s\n' "$*" >&2; exit 1; }

apt_get() {
	apt-get -y -q -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=300 "$@"
}

apt_updated=0
apt_update() {
	if [[ $apt_updated == 0 ]]; then
		log "apt-get update"
		apt_get update
		apt_updated=1
	fi
}

# sq VALUE: VALUE as one single-quoted word for a POSIX shell.
sq() {
	local q="'\\''"
	printf "'%s'" "${1//\'/$q}"
}

# set_environment KEY VALUE: one KEY=VALUE line in /etc/environment (read by
# pam_env for ssh logins and sudo), replacing an earlier one.
set_environment() {
	local key=$1 value=$2 file=/etc/environment tmp
	touch "$file"
	tmp=$(mktemp)
	KEY=$key awk 'index($0, ENVIRON["KEY"] "=") != 1' "$file" >"$tmp"
	printf '%s=%s\n' "$key" "$value" >>"$tmp"
	cat "$tmp" >"$file"
	rm -f "$tmp"
}

# ---------------------------------------------------------------- proxy
# Accept either spelling; export both, since tools differ in which they read.
proxy_names=()
for name in http_proxy https_proxy no_proxy; do
	upper=${name^^}
	value=${!name:-${!upper:-}}
	if [[ -n $value ]]; then
		export "$name=$value" "$upper=$value"
		proxy_names+=("$name")
	fi
done

# ---------------------------------------------------------------- CA certificates
install_extra_cas() {
	local dir f certs=() dest=/usr/local/share/ca-certificates/tcplab
	for dir in "$REPO/vagrant/ca-certificates" /tmp/tcplab-extra-ca; do
		for f in "$dir"/*.crt "$dir"/*.pem; do
			[[ -f $f ]] && certs+=("$f")
		done
	done
	if [[ ${#certs[@]} == 0 ]]; then
		rm -rf "$dest"
		return 0
	fi
	if ! command -v update-ca-certificates >/dev/null; then
		apt_update
		apt_get install --no-install-recommends ca-certificates
	fi
	log "installing ${#certs[@]} extra CA certificate(s)"
	rm -rf "$dest"
	install -d -m 0755 "$dest"
	for f in "${certs[@]}"; do
		f_name=${f##*/}
		install -m 0644 "$f" "$dest/${f_name%.*}.crt"
	done
	update-ca-certificates
}
install_extra_cas

# ---------------------------------------------------------------- apt sources
# shellcheck source=/dev/null
. /etc/os-release
codename=${VERSION_CODENAME:-}
backports_list=/etc/apt/sources.list.d/tcplab-backports.list

add_backports() {
	local mirror=${TCPLAB_DEBIAN_MIRROR:-}
	# $(...) in the --format strings below are apt's fields, not the shell's.
	# shellcheck disable=SC2016
	if [[ ! -f $backports_list ]] &&
		apt-get indextargets --format '$(RELEASE)' | grep -xF "$codename-backports" >/dev/null; then
		return 0 # the box already has backports configured
	fi
	if [[ -z $mirror ]]; then
		# shellcheck disable=SC2016
		mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' |
			awk -v r="$codename" '$2 == r && !found { print $1; found = 1 }')
	fi
	[[ -n $mirror ]] ||
		die "no Debian mirror found for $codename in the apt sources; set TCPLAB_DEBIAN_MIRROR"
	local line
	line=$(printf '%s\ndeb %s %s-backports main' "$MARK" "$mirror" "$codename")
	if [[ ! -f $backports_list || $(<"$backports_list") != "$line" ]]; then
		printf '%s\n' "$line" >"$backports_list"
		apt_updated=0 # a new source needs another update
	fi
}

go_target=()
if [[ ${ID:-} == debian && -n $codename ]]; then
	# apt-get indextargets lists only sources whose indexes were fetched.
	apt_update
	add_backports
	go_target=(-t "$codename-backports")
fi

# ---------------------------------------------------------------- packages
apt_update

packages=(ca-certificates git make rsync iproute2 nftables procps kmod)

needs_cc=0
if [[ ${TCPLAB_INSTALL_BUILD_ESSENTIAL:-0} == 1 ]]; then
	needs_cc=1
elif [[ -d $REPO ]] && grep -rqs --include='*.go' -e '^import "C"' "$REPO"; then
	needs_cc=1
elif grep -qs -e '-race' "$REPO/Makefile"; then
	needs_cc=1
fi
if [[ $needs_cc == 1 ]]; then
	packages+=(build-essential)
fi
# The programs the tests use; `make test` would otherwise install them itself
# (scripts/test-deps.sh), in the middle of a timed run.
test_deps=$REPO/scripts/test-deps.sh
test_packages=()
if [[ -f $test_deps ]]; then
	mapfile -t test_packages < <(bash "$test_deps" --packages)
	packages+=("${test_packages[@]}")
else
	log "warning: $test_deps not found; make test will install the programs the tests use"
fi

log "installing: ${packages[*]}"
apt_get install --no-install-recommends "${packages[@]}"

log "installing golang-go${go_target[*]:+ (${go_target[*]})}"
apt_get install --no-install-recommends "${go_target[@]}" golang-go

# The packaged go command only needs to be new enough (1.21+) to switch
# toolchains: with GOTOOLCHAIN=auto it fetches the toolchain that go.mod asks
# for through the Go module proxy, on first use.
local_go=$(GOTOOLCHAIN=local go env GOVERSION)
if [[ ! $local_go =~ ^go1\.([0-9]+) ]] || ((BASH_REMATCH[1] < 21)); then
	die "packaged Go is $local_go; toolchain switching needs go1.21 or newer"
fi

# ---------------------------------------------------------------- environment
set_environment GOTOOLCHAIN auto
profile=/etc/profile.d/tcplab.sh
{
	printf '%s\n' "$MARK"
	printf 'export GOTOOLCHAIN=auto\n'
	for name in "${proxy_names[@]}"; do
		upper=${name^^}
		printf 'export %s=%s %s=%s\n' "$name" "$(sq "${!name}")" "$upper" "$(sq "${!name}")"
	done
} >"$profile"
chmod 0644 "$profile"
for name in "${proxy_names[@]}"; do
	upper=${name^^}
	set_environment "$name" "${!name}"
	set_environment "$upper" "${!name}"
done
export GOTOOLCHAIN=auto

# The tests run as root in a tree owned by the ssh user: let git (and so Go's
# VCS stamping) accept it.
if ! git config --system --get-all safe.directory 2>/dev/null | grep -xF "$REPO" >/dev/null; then
	git config --system --add safe.directory "$REPO"
fi

# ---------------------------------------------------------------- Go toolchain
# Fetch the toolchain now, as root with root's module cache: vagrant/test.sh
# runs the tests with sudo and HOME=/root, so they find it there.
go_version="(no go.mod in $REPO)"
if [[ -f $REPO/go.mod ]]; then
	log "fetching the Go toolchain that go.mod asks for"
	if ! go_version=$(cd "$REPO" && HOME=/root go version); then
		die "could not fetch the Go toolchain (behind a proxy? forward http_proxy/https_proxy; TLS errors: add the proxy's CA, see vagrant/README.md)"
	fi
	if ! (cd "$REPO" && HOME=/root go mod download); then
		log "warning: go mod download failed; the tests will try again"
	fi
	# Compile the standard library, the dependencies, tcplab and every test
	# package into root's build cache now: `make test` then only links, instead
	# of compiling while the first packages' tests run (which starves their
	# timing under software emulation), and `make build` (same tags) too.
	# `-run '^$'` runs no test.
	log "filling Go's build cache (go test -run '^\$' ./..., go build ./cmd/tcplab)"
	cache_start=$SECONDS
	if (cd "$REPO" && HOME=/root go test -count=1 -run '^$' ./... >/dev/null &&
		HOME=/root go build -tags urfave_cli_no_docs -o /dev/null ./cmd/tcplab); then
		log "build cache filled in $((SECONDS - cache_start)) s"
	else
		log "warning: could not fill the build cache; the tests will compile everything"
	fi
else
	log "warning: $REPO/go.mod not found; is the synced folder there?"
fi

# ---------------------------------------------------------------- summary
# Kernel features the cases use (or, for netem and dummy, must not rely on).
modules=()
if [[ -d /lib/modules/$(uname -r) ]]; then
	for m in veth nf_tables nft_reject_inet nf_conntrack inet_diag sch_htb sch_tbf sch_netem dummy; do
		if modinfo -F filename "$m" >/dev/null 2>&1; then
			modules+=("$m")
		else
			modules+=("$m(missing)")
		fi
	done
else
	modules=("unknown (no /lib/modules/$(uname -r))")
fi

log "provisioned:"
printf '    %-12s %s\n' \
	"system" "${PRETTY_NAME:-unknown}" \
	"kernel" "$(uname -r)" \
	"modules" "${modules[*]}" \
	"go (apt)" "$local_go ($(command -v go))" \
	"go (repo)" "$go_version" \
	"GOTOOLCHAIN" "auto (/etc/environment, $profile)" \
	"git" "$(git --version)" \
	"make" "$(make --version | head -n 1)" \
	"iproute2" "$(ip -V)" \
	"nftables" "$(nft --version)" \
	"proxy" "${proxy_names[*]:-none}" \
	"extra CAs" "$(find /usr/local/share/ca-certificates/tcplab -name '*.crt' 2>/dev/null | wc -l)"
if [[ $needs_cc == 1 ]]; then
	printf '    %-12s %s\n' "cc" "$(cc --version | head -n 1)"
fi
if [[ ${#test_packages[@]} -gt 0 ]]; then
	printf '    %-12s %s\n' \
		"tcpdump" "$(tcpdump --version 2>&1 | head -n 1)" \
		"chromium" "$(chromium --version 2>/dev/null || echo installed)" \
		"curl" "$(curl --version | head -n 1)" \
		"python3" "$(python3 --version)"
fi

install -d -m 0755 "${DONE%/*}"
date -u '+%Y-%m-%dT%H:%M:%SZ' >"$DONE"
