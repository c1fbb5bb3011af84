package capture

import "fmt"

// The one vocabulary of ICMP and ICMPv6: type and code numbers and their
// names, used by the decoder, the faults (impair) and the reports.

// Destination-unreachable types.
const (
	ICMPDestUnreachable  uint8 = 3 // ICMP (RFC 792)
	ICMP6DestUnreachable uint8 = 1 // ICMPv6 (RFC 4443)
	// ICMP6PacketTooBig is ICMPv6's path MTU message (RFC 4443 3.2), the
	// counterpart of ICMP destination unreachable, fragmentation needed.
	ICMP6PacketTooBig uint8 = 2
)

// ICMP destination-unreachable codes (RFC 792, RFC 1812).
const (
	NetUnreachable   uint8 = 0
	HostUnreachable  uint8 = 1
	ProtoUnreachable uint8 = 2
	PortUnreachable  uint8 = 3
	FragNeeded       uint8 = 4
	NetProhibited    uint8 = 9
	HostProhibited   uint8 = 10
	AdminProhibited  uint8 = 13
)

// ICMPv6 destination-unreachable codes (RFC 4443).
const (
	NoRoute6         uint8 = 0
	AdminProhibited6 uint8 = 1
	BeyondScope6     uint8 = 2
	AddrUnreachable6 uint8 = 3
	PortUnreachable6 uint8 = 4
	PolicyFail6      uint8 = 5
	RejectRoute6     uint8 = 6
)

// UnreachableType is the destination-unreachable type of a family (4 or 6).
func UnreachableType(family int) uint8 {
	if family == 6 {
		return ICMP6DestUnreachable
	}
	return ICMPDestUnreachable
}

// UnreachableName names a destination-unreachable code of a family (4 or
// 6): "host-unreachable", "address-unreachable"; "code-N" if unknown.
func UnreachableName(family int, code uint8) string {
	codes := icmpv4Codes[ICMPDestUnreachable]
	if family == 6 {
		codes = icmpv6Codes[ICMP6DestUnreachable]
	}
	if n, ok := codes[code]; ok {
		return n
	}
	return fmt.Sprintf("code-%d", code)
}

// ICMPLabel is how a family's ICMP is named in prose: "ICMP" or "ICMPv6".
func ICMPLabel(family int) string {
	if family == 6 {
		return "ICMPv6"
	}
	return "ICMP"
}

// ICMPProto is the decoded protocol name (Decoded.Proto) of a family's ICMP.
func ICMPProto(family int) string {
	if family == 6 {
		return "icmpv6"
	}
	return "icmp"
}

var icmpv4Types = map[uint8]string{
	0: "echo-reply", 3: "dest-unreachable", 4: "source-quench", 5: "redirect",
	8: "echo-request", 9: "router-advertisement", 10: "router-solicitation",
	11: "time-exceeded", 12: "parameter-problem", 13: "timestamp-request",
	14: "timestamp-reply",
}

var icmpv4Codes = map[uint8]map[uint8]string{
	3: {
		0: "net-unreachable", 1: "host-unreachable", 2: "protocol-unreachable",
		3: "port-unreachable", 4: "frag-needed", 5: "source-route-failed",
		6: "net-unknown", 7: "host-unknown", 8: "source-host-isolated",
		9: "net-prohibited", 10: "host-prohibited", 11: "net-tos-unreachable",
		12: "host-tos-unreachable", 13: "admin-prohibited",
		14: "host-precedence-violation", 15: "precedence-cutoff",
	},
	5:  {0: "net", 1: "host", 2: "tos-net", 3: "tos-host"},
	11: {0: "ttl-exceeded", 1: "reassembly-timeout"},
	12: {0: "pointer", 1: "missing-option", 2: "bad-length"},
}

var icmpv6Types = map[uint8]string{
	1: "dest-unreachable", 2: "packet-too-big", 3: "time-exceeded",
	4: "parameter-problem", 128: "echo-request", 129: "echo-reply",
	130: "mld-query", 131: "mld-report", 132: "mld-done",
	133: "router-solicitation", 134: "router-advertisement",
	135: "neighbor-solicitation", 136: "neighbor-advertisement",
	137: "redirect", 143: "mldv2-report",
}

var icmpv6Codes = map[uint8]map[uint8]string{
	1: {
		0: "no-route", 1: "admin-prohibited", 2: "beyond-scope",
		3: "address-unreachable", 4: "port-unreachable",
		5: "source-policy-failed", 6: "reject-route",
		7: "source-routing-header-error", 8: "headers-too-long",
	},
	3: {0: "hop-limit-exceeded", 1: "reassembly-timeout"},
	4: {
		0: "erroneous-header", 1: "unrecognized-next-header",
		2: "unrecognized-option",
	},
}
