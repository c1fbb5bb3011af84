#!/bin/sh
# BASELINE FOR BENCHMARKS ONLY - test tooling, not part of tcplab.
#
# Builds and removes the lab tcplab builds, with one iproute2 command per
# step as a shell script would: three named namespaces (client, router,
# server), a veth pair from the router to each (created inside the router
# namespace, the peer created directly in the other namespace), the same
# sysctls in each namespace, addresses from 198.51.100.0/24, 203.0.113.0/24,
# 2001:db8:c::/64 and 2001:db8:5::/64, permanent neighbour entries, default
# routes and forwarding on the router. Nothing is created in, or changed in,
# the host namespace.
#
# bench/compare.sh times it against `tcplab up` + `tcplab down`.
#
# Usage: baseline-iproute2.sh up|down|clean ID     (as root)
#        clean removes whatever a failed up left, ignoring what is missing.

# Every name below is built from a validated id: no quoting needed.
# shellcheck disable=SC2086
set -eu

usage() { echo "usage: $0 up|down|clean ID" >&2; exit 2; }
[ $# -eq 2 ] || usage
verb=$1 id=$2
case $id in *[!a-z0-9]* | "") echo "$0: ID must be lower-case letters and digits" >&2; exit 2 ;; esac
[ ${#id} -le 9 ] || { echo "$0: ID is at most 9 characters (interface names)" >&2; exit 2; }

# Namespace names are not tcplab's ("tcplab-..."), so that `tcplab clean`
# never mistakes them for its own leftovers.
C=iprb-$id-client R=iprb-$id-router S=iprb-$id-server
# Link names as tcplab's: tl-ID-<on><to>.
RC=tl-$id-rc CR=tl-$id-cr RS=tl-$id-rs SR=tl-$id-sr
# Fixed, locally administered MACs (tcplab derives its own from the id).
MAC_RC=02:74:6c:00:00:01 MAC_CR=02:74:6c:00:00:02
MAC_RS=02:74:6c:00:00:03 MAC_SR=02:74:6c:00:00:04

# The sysctls tcplab writes in every namespace (topology/up.go,
# nodeSysctls, which a test compares with this list), in its order, as one
# shell command line; $1 is 1 on the router, 0 elsewhere. Written through /proc/sys by one sh
# per namespace, so that the baseline needs nothing but iproute2 and sh.
node_sysctls() {
	cmds=
	w() { cmds="$cmds echo $2 >/proc/sys/net/$1;"; }
	w ipv4/ip_forward "$1"
	w ipv4/conf/default/forwarding "$1"
	w ipv6/conf/all/disable_ipv6 0
	w ipv6/conf/all/forwarding "$1"
	w ipv6/conf/all/ignore_routes_with_linkdown 0
	w ipv6/conf/all/keep_addr_on_down 1
	w ipv6/conf/all/accept_dad 0
	w ipv6/conf/default/accept_dad 0
	w ipv6/conf/default/router_solicitation_delay 0
	w ipv6/conf/default/accept_ra 0
	w ipv6/conf/default/router_solicitations 0
	w ipv4/conf/all/rp_filter 0
	w ipv4/conf/all/accept_redirects 0
	w ipv4/conf/all/send_redirects 0
	w ipv4/conf/all/accept_local 0
	w ipv4/conf/all/ignore_routes_with_linkdown 0
	w ipv4/conf/default/rp_filter 0
	w ipv4/conf/default/accept_redirects 0
	w ipv4/conf/default/send_redirects 0
	w ipv4/conf/default/accept_local 0
	w ipv4/conf/default/ignore_routes_with_linkdown 0
	w ipv4/tcp_no_metrics_save 1
	if [ "$1" = 1 ]; then
		w ipv4/icmp_ratelimit 0
		w ipv4/icmp_msgs_per_sec 100000
		w ipv6/icmp/ratelimit 0
	fi
	echo "$cmds"
}

up() {
	ip netns add $C
	ip netns add $R
	ip netns add $S
	ip netns exec $C sh -ec "$(node_sysctls 0)"
	ip netns exec $R sh -ec "$(node_sysctls 1)"
	ip netns exec $S sh -ec "$(node_sysctls 0)"
	ip -n $C link set lo up
	ip -n $R link set lo up
	ip -n $S link set lo up

	ip -n $R link add $RC address $MAC_RC numtxqueues 1 numrxqueues 1 type veth \
		peer name $CR address $MAC_CR numtxqueues 1 numrxqueues 1 netns $C
	ip -n $R link set $RC up
	ip -n $C link set $CR up
	ip -n $R addr add 198.51.100.1/24 dev $RC
	ip -n $C addr add 198.51.100.2/24 dev $CR
	ip -n $R neigh replace 198.51.100.2 lladdr $MAC_CR dev $RC nud permanent
	ip -n $C neigh replace 198.51.100.1 lladdr $MAC_RC dev $CR nud permanent
	ip -n $C route add default via 198.51.100.1 dev $CR
	ip -n $R addr add 2001:db8:c::1/64 dev $RC
	ip -n $C addr add 2001:db8:c::2/64 dev $CR
	ip -n $R neigh replace 2001:db8:c::2 lladdr $MAC_CR dev $RC nud permanent
	ip -n $C neigh replace 2001:db8:c::1 lladdr $MAC_RC dev $CR nud permanent
	ip -n $C route add default via 2001:db8:c::1 dev $CR

	ip -n $R link add $RS address $MAC_RS numtxqueues 1 numrxqueues 1 type veth \
		peer name $SR address $MAC_SR numtxqueues 1 numrxqueues 1 netns $S
	ip -n $R link set $RS up
	ip -n $S link set $SR up
	ip -n $R addr add 203.0.113.1/24 dev $RS
	ip -n $S addr add 203.0.113.2/24 dev $SR
	ip -n $R neigh replace 203.0.113.2 lladdr $MAC_SR dev $RS nud permanent
	ip -n $S neigh replace 203.0.113.1 lladdr $MAC_RS dev $SR nud permanent
	ip -n $S route add default via 203.0.113.1 dev $SR
	ip -n $R addr add 2001:db8:5::1/64 dev $RS
	ip -n $S addr add 2001:db8:5::2/64 dev $SR
	ip -n $R neigh replace 2001:db8:5::2 lladdr $MAC_SR dev $RS nud permanent
	ip -n $S neigh replace 2001:db8:5::1 lladdr $MAC_RS dev $SR nud permanent
	ip -n $S route add default via 2001:db8:5::1 dev $SR
}

# Deleting a namespace removes its links: no link is deleted one by one.
down() {
	ip netns del $C
	ip netns del $R
	ip netns del $S
}

clean() {
	for ns in $C $R $S; do
		ip netns del $ns 2>/dev/null || true
	done
}

case $verb in
up) up ;;
down) down ;;
clean) clean ;;
*) usage ;;
esac
