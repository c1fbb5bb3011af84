package impair

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/topology"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Middleboxes in the router: a stateful firewall that forgets idle
// connections, masquerading, a smaller link MTU, the router's own ICMP
// errors filtered, and a partition between the hosts. Each fault has a
// chain of its own in the lab's table, so clearing one leaves the others.

// The per-namespace timeout of an established connection in the
// connection tracker, and the kernel's default (5 days).
const (
	ctEstablishedKey     = "net.netfilter.nf_conntrack_tcp_timeout_established"
	ctLooseKey           = "net.netfilter.nf_conntrack_tcp_loose"
	ctEstablishedDefault = "432000"
	// DefaultMTU is the mtu fault's link MTU: IPv6's minimum, so one value
	// serves both families.
	DefaultMTU = 1280
	linkMTU    = 1500 // a veth's MTU as the lab makes it
)

// Stateful is the router filtering with connection tracking: segments of
// connections it tracks pass, a new connection only by a SYN, and all else
// forwarded between the hosts is dropped. Options.Timeout, if set, is how
// long an established connection may stay idle before the tracker forgets
// it (net.netfilter.nf_conntrack_tcp_timeout_established in the router's
// namespace).
var Stateful = Fault{
	Name: "stateful", Node: topology.Router,
	Help: "the router tracks connections: established accepted, new only by SYN, the rest dropped (--timeout: established timeout)",
	mark: func(o Options) string {
		s := "router filters with connection tracking"
		if o.Timeout > 0 {
			s += ", established timeout " + ctSeconds(o.Timeout) + " s"
		}
		return s
	},
	apply: func(l *topology.Lab, o Options) (Effect, error) { return Effect{}, stateful(l, o.Timeout) },
	clear: func(l *topology.Lab) error {
		return errors.Join(deleteChain(l, statefulChain), l.Router.Sysctl(ctEstablishedKey, ctEstablishedDefault))
	},
}

// Masquerade is the router rewriting the client's source address to its
// own on the server's side (NAT), for both families.
var Masquerade = Fault{
	Name: "masquerade", Node: topology.Router,
	Help:  "the router masquerades the client behind its own address on the server's side (NAT)",
	Mark:  "router masquerades the client",
	apply: func(l *topology.Lab, _ Options) (Effect, error) { return Effect{}, masquerade(l) },
	clear: func(l *topology.Lab) error { return deleteChain(l, masqChain) },
}

// MTU is the router's link to the server carrying at most Options.MTU
// bytes (default 1280). The server's own end keeps 1500, as a server
// behind a tunnel does: its SYN-ACK still advertises the MSS of a
// 1500-byte link, so the client learns of the smaller MTU only from the
// router's ICMP. Only data towards the server meets the smaller MTU: the
// router's other end cannot be lowered alone, since a veth drops on
// receipt, silently, a frame larger than its own MTU (__dev_forward_skb,
// is_skb_forwardable), so the client's 1500-byte packets would vanish
// before the router could answer them.
var MTU = Fault{
	Name: "mtu", Node: topology.Router,
	Help: "the router's link to the server carries at most --mtu bytes (default 1280); the server's end keeps 1500",
	mark: func(o Options) string {
		return fmt.Sprintf("router's link to the server: MTU %d", mtuOf(o))
	},
	apply: func(l *topology.Lab, o Options) (Effect, error) { return Effect{}, setMTU(l, mtuOf(o)) },
	clear: func(l *topology.Lab) error { return setMTU(l, linkMTU) },
}

// DropOwnICMP is the router discarding the ICMP errors it generates itself
// of one type and code per family (its OUTPUT hook: they are the router's
// own packets, not forwarded ones).
func DropOwnICMP(name string, type4, code4, type6, code6 uint8) Fault {
	what := fmt.Sprintf("ICMP type %d code %d (ICMPv6 type %d code %d)", type4, code4, type6, code6)
	return Fault{
		Name: name, Node: topology.Router,
		Help: "the router drops the " + what + " it generates itself",
		Mark: "router drops its own " + what,
		apply: func(l *topology.Lab, o Options) (Effect, error) {
			for _, fam := range o.families() {
				t, c := type4, code4
				if fam == 6 {
					t, c = type6, code6
				}
				if err := dropOwnICMP(l, fam, t, c); err != nil {
					return Effect{}, err
				}
			}
			return Effect{}, nil
		},
		clear: func(l *topology.Lab) error { return deleteChain(l, ownICMPChain) },
	}
}

// DropTooBig drops the router's ICMP fragmentation-needed (ICMPv6 packet
// too big): path MTU discovery's messages, filtered as by a careless
// firewall, which makes a PMTU black hole.
var DropTooBig = DropOwnICMP("drop-toobig", capture.ICMPDestUnreachable, capture.FragNeeded, capture.ICMP6PacketTooBig, 0)

// Partition is the router dropping everything between the client and the
// server, both ways, until cleared.
var Partition = Fault{
	Name: "partition", Node: topology.Router,
	Help: "the router drops everything between client and server, both ways (clear heals it)",
	Mark: "router drops everything between client and server (partition)",
	apply: func(l *topology.Lab, o Options) (Effect, error) {
		for _, fam := range o.families() {
			if err := partition(l, fam); err != nil {
				return Effect{}, err
			}
		}
		return Effect{}, nil
	},
	clear: func(l *topology.Lab) error { return deleteChain(l, partitionChain) },
}

func init() {
	catalogue = append(catalogue, Stateful, Masquerade, MTU, DropTooBig, Partition)
	extraClears = append(extraClears,
		func(l *topology.Lab) error { return setMTU(l, linkMTU) },
		func(l *topology.Lab) error {
			// A kernel without connection tracking has no such key, and
			// nothing to undo.
			if _, err := l.Router.ReadSysctl(ctEstablishedKey); err != nil {
				return nil
			}
			return l.Router.Sysctl(ctEstablishedKey, ctEstablishedDefault)
		})
}

func mtuOf(o Options) int {
	if o.MTU > 0 {
		return o.MTU
	}
	return DefaultMTU
}

// ctSeconds is a timeout as the tracker's sysctl takes it: whole seconds,
// rounded up, at least 1.
func ctSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

var (
	statefulChain = &nftables.Chain{Name: "stateful", Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter}
	masqChain = &nftables.Chain{Name: "masquerade", Table: table, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource}
	ownICMPChain = &nftables.Chain{Name: "own-icmp", Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter}
	partitionChain = &nftables.Chain{Name: "partition", Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityRef(-10)}
)

// addRules adds rules to one of the lab's chains in the router, creating
// the table and chain on first use; kernelNeeds names the kernel options
// the rules depend on, for the error when they are missing.
func addRules(lab *topology.Lab, ch *nftables.Chain, kernelNeeds string, rules ...[]expr.Any) error {
	c, err := routerNFT(lab)
	if err != nil {
		return err
	}
	c.AddTable(table)
	c.AddChain(ch)
	for _, r := range rules {
		c.AddRule(&nftables.Rule{Table: table, Chain: ch, Exprs: r})
	}
	if err := c.Flush(); err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EPROTONOSUPPORT) || errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("add nftables chain %s in %s: the kernel lacks %s: %w", ch.Name, lab.Router.NSName, kernelNeeds, err)
		}
		return fmt.Errorf("add nftables chain %s in %s: %w", ch.Name, lab.Router.NSName, err)
	}
	return nil
}

// deleteChain removes one of the lab's chains from the router, if there.
func deleteChain(lab *topology.Lab, ch *nftables.Chain) error {
	c, err := routerNFT(lab)
	if err != nil {
		return err
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return fmt.Errorf("list nftables chains in %s: %w", lab.Router.NSName, err)
	}
	for _, x := range chains {
		if x.Table.Name == TableName && x.Name == ch.Name {
			c.FlushChain(x)
			c.DelChain(x)
			if err := c.Flush(); err != nil {
				return fmt.Errorf("delete nftables chain %s in %s: %w", ch.Name, lab.Router.NSName, err)
			}
		}
	}
	return nil
}

// ctState matches packets whose connection-tracking state has any of bits.
func ctState(bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: le32(bits), Xor: le32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: le32(0)},
	}
}

func le32(v uint32) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }

// stateful installs the connection-tracking filter and sets the
// established timeout, and nf_conntrack_tcp_loose to its default, 1, so the
// filter is what drops a connection picked up in the middle. The rules come
// first: on kernels where connection tracking is a module, its per-namespace
// sysctls exist only once something in the namespace uses it.
func stateful(lab *topology.Lab, timeout time.Duration) error {
	const fin, syn, rst, ack = 0x01, 0x02, 0x04, 0x10
	newSYN := append(ctState(expr.CtStateBitNEW),
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{fin | syn | rst | ack}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{syn}},
		&expr.Verdict{Kind: expr.VerdictAccept})
	if err := addRules(lab, statefulChain, "connection tracking in nf_tables (CONFIG_NF_CONNTRACK, CONFIG_NFT_CT)",
		append(ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), &expr.Verdict{Kind: expr.VerdictAccept}),
		newSYN,
		// Everything else forwarded: a segment of a connection the tracker
		// does not know (or has forgotten), even one it would pick up in
		// the middle (net.netfilter.nf_conntrack_tcp_loose), is dropped.
		[]expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop}}); err != nil {
		return err
	}
	if _, err := lab.Router.ReadSysctl(ctEstablishedKey); err != nil {
		return fmt.Errorf("connection tracking in %s: the kernel lacks it (CONFIG_NF_CONNTRACK): %w", lab.Router.NSName, err)
	}
	v := ctEstablishedDefault
	if timeout > 0 {
		v = ctSeconds(timeout)
	}
	if err := lab.Router.Sysctl(ctEstablishedKey, v); err != nil {
		return err
	}
	return lab.Router.Sysctl(ctLooseKey, "1")
}

// masquerade rewrites the source of what leaves towards the server.
func masquerade(lab *topology.Lab) error {
	name := topology.LinkName(lab.ID, topology.Router, topology.Server)
	ifname := make([]byte, unix.IFNAMSIZ)
	copy(ifname, name)
	return addRules(lab, masqChain, "NAT in nf_tables (CONFIG_NF_NAT, CONFIG_NFT_NAT, CONFIG_NFT_MASQ)",
		[]expr.Any{
			&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname},
			&expr.Counter{},
			&expr.Masq{},
		})
}

// dropOwnICMP drops the router's own ICMP (ICMPv6) of a type and code.
func dropOwnICMP(lab *topology.Lab, family int, typ, code uint8) error {
	nfproto, l4 := byte(unix.NFPROTO_IPV4), byte(unix.IPPROTO_ICMP)
	if family == 6 {
		nfproto, l4 = unix.NFPROTO_IPV6, unix.IPPROTO_ICMPV6
	}
	return addRules(lab, ownICMPChain, "nf_tables (CONFIG_NF_TABLES, CONFIG_NF_TABLES_INET)",
		[]expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfproto}},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{l4}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{typ, code}},
			&expr.Counter{},
			&expr.Verdict{Kind: expr.VerdictDrop},
		})
}

// partition drops everything between the client and the server in one
// family, both ways.
func partition(lab *topology.Lab, family int) error {
	c, s := topology.Addr(topology.Client, family), topology.Addr(topology.Server, family)
	return addRules(lab, partitionChain, "nf_tables (CONFIG_NF_TABLES, CONFIG_NF_TABLES_INET)",
		between(family, c, s), between(family, s, c))
}

func between(family int, src, dst net.IP) []expr.Any {
	nfproto, srcOff, dstOff, alen := byte(unix.NFPROTO_IPV4), uint32(12), uint32(16), uint32(4)
	ip := func(a net.IP) []byte { return a.To4() }
	if family == 6 {
		nfproto, srcOff, dstOff, alen = unix.NFPROTO_IPV6, 8, 24, 16
		ip = func(a net.IP) []byte { return a.To16() }
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfproto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: srcOff, Len: alen},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ip(src)},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: dstOff, Len: alen},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ip(dst)},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
}

// setMTU sets the MTU of the router's link to the server.
func setMTU(lab *topology.Lab, mtu int) error {
	h, err := lab.Router.Handle()
	if err != nil {
		return err
	}
	name := topology.LinkName(lab.ID, topology.Router, topology.Server)
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find %s in %s: %w", name, lab.Router.NSName, err)
	}
	if err := h.LinkSetMTU(l, mtu); err != nil {
		return fmt.Errorf("set the MTU of %s in %s to %d: %w", name, lab.Router.NSName, mtu, err)
	}
	return nil
}

// Tracked lists the connections the router's connection tracker holds for
// TCP from the client to the server's port in a family: each as the
// client's source port and, seen from the server, the address and port
// it comes from (the router's own when masqueraded). Entries whose timeout
// has passed are not listed (the dump skips and evicts them).
func Tracked(l *topology.Lab, family int, port uint16) ([]TrackedConn, error) {
	ns, err := l.Router.NS()
	if err != nil {
		return nil, err
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("open netfilter netlink in %s: %w", l.Router.NSName, err)
	}
	defer h.Close()
	fam := netlink.InetFamily(unix.AF_INET)
	if family == 6 {
		fam = unix.AF_INET6
	}
	flows, err := h.ConntrackTableList(netlink.ConntrackTable, fam)
	if err != nil {
		return nil, fmt.Errorf("list connection tracking entries in %s (CONFIG_NF_CT_NETLINK): %w", l.Router.NSName, err)
	}
	client := topology.Addr(topology.Client, family)
	var out []TrackedConn
	for _, f := range flows {
		if f.Forward.Protocol == unix.IPPROTO_TCP && f.Forward.SrcIP.Equal(client) && f.Forward.DstPort == port {
			out = append(out, TrackedConn{ClientPort: f.Forward.SrcPort, SeenFrom: netip.AddrPortFrom(addrOf(f.Reverse.DstIP), f.Reverse.DstPort),
				Timeout: time.Duration(f.TimeOut) * time.Second})
		}
	}
	return out, nil
}

// TrackedConn is one connection the router tracks.
type TrackedConn struct {
	ClientPort uint16
	SeenFrom   netip.AddrPort
	// Timeout is what is left of the entry's timeout.
	Timeout time.Duration
}

func addrOf(ip net.IP) netip.Addr {
	if v4 := ip.To4(); v4 != nil {
		return netip.AddrFrom4([4]byte(v4))
	}
	a, _ := netip.AddrFromSlice(ip)
	return a
}
