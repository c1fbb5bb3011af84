package impair

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/tcplab/tcplab/topology"
	"golang.org/x/sys/unix"
)

// TableName is the one nftables table the lab owns in its router.
const TableName = "tcplab"

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

// routerNFT opens nftables in the lab's router.
func routerNFT(lab *topology.Lab) (*nftables.Conn, error) {
	ns, err := lab.Router.NS()
	if err != nil {
		return nil, err
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		return nil, fmt.Errorf("open nftables in %s: %w", lab.Router.NSName, err)
	}
	return c, nil
}

// addRule appends one rule to the lab's forward chain in the router,
// creating the table and chain on first use.
func addRule(lab *topology.Lab, verdict []expr.Any) error {
	c, err := routerNFT(lab)
	if err != nil {
		return err
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

// drop makes the router silently discard the matching segments.
func drop(lab *topology.Lab, m Match) error {
	return addRule(lab, append(m.exprs(), &expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop}))
}

// reject makes the router answer the matching segments with ICMP (for IPv6
// segments ICMPv6) destination unreachable of the given code, sent from its
// own address on the incoming link, and discard them.
func reject(lab *topology.Lab, m Match, code uint8) error {
	return addRule(lab, append(m.exprs(), &expr.Counter{},
		&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: code}))
}

var setSeq atomic.Uint32

// rejectRetries makes the router drop each connection attempt's first SYN
// silently and answer its retransmissions with ICMP destination
// unreachable of the given code. A retransmitted SYN is sent from the
// kernel's timer, so the ICMP answering it always finds the client's socket
// free; the first SYN's answer, in a lab, can come back while connect still
// holds the socket, and whether it aborts the attempt or is only stored
// would depend on scheduling. The attempts are told apart by the client's
// port, in a set that forgets them after a minute.
func rejectRetries(lab *topology.Lab, m Match, code uint8) error {
	m.SYN = true
	c, err := routerNFT(lab)
	if err != nil {
		return err
	}
	c.AddTable(table)
	c.AddChain(chain)
	set := &nftables.Set{Table: table, Name: fmt.Sprintf("syn-seen-%d", setSeq.Add(1)), KeyType: nftables.TypeInetService,
		Dynamic: true, HasTimeout: true, Timeout: time.Minute}
	if err := c.AddSet(set, nil); err != nil {
		return fmt.Errorf("add nftables set in %s: %w", lab.Router.NSName, err)
	}
	sport := &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2}
	c.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: append(m.exprs(), sport,
		&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
		&expr.Counter{}, &expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: code})})
	c.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: append(m.exprs(), sport,
		&expr.Dynset{SrcRegKey: 1, SetName: set.Name, SetID: set.ID, Operation: uint32(unix.NFT_DYNSET_OP_ADD)},
		&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop})})
	if err := c.Flush(); err != nil {
		return nftError(lab, err)
	}
	return nil
}

// clearRules removes every rule the lab added: the whole table goes.
func clearRules(lab *topology.Lab) error {
	c, err := routerNFT(lab)
	if err != nil {
		return err
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
