// Package impair offers the faults a case injects, as small reversible
// operations on a lab: nftables rules in the router, link state, a host
// crash or reboot, and the signals of a host shutdown. It knows nothing of
// cases.
package impair

import (
	"errors"
	"fmt"
	"net"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/tcplab/tcplab/topology"
	"golang.org/x/sys/unix"
)

// TableName is the one nftables table the lab owns in its router.
const TableName = "tcplab"

// ICMP destination-unreachable codes the router can answer with (RFC 792,
// RFC 1812).
const (
	NetUnreachable   uint8 = 0
	HostUnreachable  uint8 = 1
	ProtoUnreachable uint8 = 2
	PortUnreachable  uint8 = 3
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

// ICMP6CodeName names the ICMPv6 codes above.
func ICMP6CodeName(code uint8) string {
	switch code {
	case NoRoute6:
		return "no-route"
	case AdminProhibited6:
		return "admin-prohibited"
	case BeyondScope6:
		return "beyond-scope"
	case AddrUnreachable6:
		return "address-unreachable"
	case PortUnreachable6:
		return "port-unreachable"
	case PolicyFail6:
		return "policy-fail"
	case RejectRoute6:
		return "reject-route"
	}
	return fmt.Sprintf("code-%d", code)
}

// ICMPCodeName names the codes above.
func ICMPCodeName(code uint8) string {
	switch code {
	case NetUnreachable:
		return "net-unreachable"
	case HostUnreachable:
		return "host-unreachable"
	case ProtoUnreachable:
		return "prot-unreachable"
	case PortUnreachable:
		return "port-unreachable"
	case 4:
		return "frag-needed"
	case NetProhibited:
		return "net-prohibited"
	case HostProhibited:
		return "host-prohibited"
	case AdminProhibited:
		return "admin-prohibited"
	}
	return fmt.Sprintf("code-%d", code)
}

// Match selects the TCP segments a rule applies to; zero fields match all.
// The family is the addresses' (IPv4 when neither is set, unless V6).
type Match struct {
	Src, Dst net.IP
	V6       bool
	DstPort  uint16
	// SYN matches only connection attempts: SYN set, ACK clear.
	SYN bool
}

// IsV6 tells the family of the segments matched.
func (m Match) IsV6() bool {
	return m.V6 || (m.Src != nil && m.Src.To4() == nil) || (m.Dst != nil && m.Dst.To4() == nil)
}

func (m Match) exprs() []expr.Any {
	// Address offsets and lengths in the IPv4 and IPv6 headers.
	proto, srcOff, dstOff, alen := byte(unix.NFPROTO_IPV4), uint32(12), uint32(16), uint32(4)
	ip := func(a net.IP) []byte { return a.To4() }
	if m.IsV6() {
		proto, srcOff, dstOff, alen = unix.NFPROTO_IPV6, 8, 24, 16
		ip = func(a net.IP) []byte { return a.To16() }
	}
	e := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		// The transport protocol after any IPv6 extension headers.
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
	}
	if m.Src != nil {
		e = append(e,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: srcOff, Len: alen},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ip(m.Src)})
	}
	if m.Dst != nil {
		e = append(e,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: dstOff, Len: alen},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ip(m.Dst)})
	}
	if m.DstPort != 0 {
		e = append(e,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(m.DstPort >> 8), byte(m.DstPort)}})
	}
	if m.SYN {
		const syn, ack = 0x02, 0x10
		e = append(e,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{syn | ack}, Xor: []byte{0}},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{syn}})
	}
	return e
}

func (m Match) String() string {
	s := "tcp"
	if m.Src != nil {
		s += " from " + m.Src.String()
	}
	if m.Dst != nil {
		s += " to " + m.Dst.String()
	}
	if m.DstPort != 0 {
		s += fmt.Sprintf(" port %d", m.DstPort)
	}
	if m.SYN {
		s += " SYN only"
	}
	return s
}

var (
	table = &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
	chain = &nftables.Chain{
		Name:     "forward",
		Table:    table,
		Type:     nftables.ChainTypeFilter,
		Hooknum:  nftables.ChainHookForward,
		Priority: nftables.ChainPriorityFilter,
	}
)

// addRule appends one rule to the lab's forward chain in the router,
// creating the table and chain on first use.
func addRule(lab *topology.Lab, verdict []expr.Any) error {
	ns, err := lab.Router.NS()
	if err != nil {
		return err
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		return fmt.Errorf("open nftables in %s: %w", lab.Router.NSName, err)
	}
	c.AddTable(table)
	c.AddChain(chain)
	c.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: verdict})
	if err := c.Flush(); err != nil {
		return nftError(lab, err)
	}
	return nil
}

func nftError(lab *topology.Lab, err error) error {
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EPROTONOSUPPORT) || errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("add nftables rule in %s: the kernel lacks nf_tables or its reject support (CONFIG_NF_TABLES, CONFIG_NFT_REJECT_INET): %w", lab.Router.NSName, err)
	}
	return fmt.Errorf("add nftables rule in %s: %w", lab.Router.NSName, err)
}

// Drop makes the router silently discard the matching segments.
func Drop(lab *topology.Lab, m Match) error {
	return addRule(lab, append(m.exprs(), &expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop}))
}

// Reject makes the router answer the matching segments with ICMP (for IPv6
// segments ICMPv6) destination unreachable of the given code, sent from its
// own address on the incoming link, and discard them.
func Reject(lab *topology.Lab, m Match, code uint8) error {
	return addRule(lab, append(m.exprs(), &expr.Counter{},
		&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: code}))
}

// Clear removes every rule the lab added: the whole table goes.
func Clear(lab *topology.Lab) error {
	ns, err := lab.Router.NS()
	if err != nil {
		return err
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		return fmt.Errorf("open nftables in %s: %w", lab.Router.NSName, err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return fmt.Errorf("list nftables tables in %s: %w", lab.Router.NSName, err)
	}
	for _, t := range tables {
		if t.Name == TableName {
			c.DelTable(t)
			if err := c.Flush(); err != nil {
				return fmt.Errorf("delete nftables table %s in %s: %w", TableName, lab.Router.NSName, err)
			}
		}
	}
	return nil
}
