package capture

import (
	"fmt"
	"strings"
)

// TCPFlags is the flags byte of a TCP header.
type TCPFlags uint8

// The TCP flags (RFC 9293, RFC 3168).
const (
	FIN TCPFlags = 0x01
	SYN TCPFlags = 0x02
	RST TCPFlags = 0x04
	PSH TCPFlags = 0x08
	ACK TCPFlags = 0x10
	URG TCPFlags = 0x20
	ECE TCPFlags = 0x40
	CWR TCPFlags = 0x80
)

// tcpFlagOrder is the order flags are written in: "SYN,ACK", "FIN,ACK",
// "RST,ACK", "PSH,ACK".
var tcpFlagOrder = []struct {
	f    TCPFlags
	name string
}{
	{SYN, "SYN"}, {FIN, "FIN"}, {RST, "RST"}, {PSH, "PSH"},
	{ACK, "ACK"}, {URG, "URG"}, {ECE, "ECE"}, {CWR, "CWR"},
}

// Has tells whether every flag of g is set.
func (f TCPFlags) Has(g TCPFlags) bool { return f&g == g }

// String writes the flags comma-separated in a fixed order, "" for none.
func (f TCPFlags) String() string {
	var names []string
	for _, fl := range tcpFlagOrder {
		if f&fl.f != 0 {
			names = append(names, fl.name)
		}
	}
	return strings.Join(names, ",")
}

// MarshalText writes the flags as String does, so JSON keeps "SYN,ACK".
func (f TCPFlags) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText reads what MarshalText writes.
func (f *TCPFlags) UnmarshalText(b []byte) error {
	g, err := ParseTCPFlags(string(b))
	*f = g
	return err
}

// ParseTCPFlags reads comma-separated flag names ("RST,ACK").
func ParseTCPFlags(s string) (TCPFlags, error) {
	var f TCPFlags
	if s == "" {
		return 0, nil
	}
next:
	for _, name := range strings.Split(s, ",") {
		for _, fl := range tcpFlagOrder {
			if fl.name == name {
				f |= fl.f
				continue next
			}
		}
		return f, fmt.Errorf("unknown TCP flag %q in %q", name, s)
	}
	return f, nil
}
