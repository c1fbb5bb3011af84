package topology

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

type kv struct{ k, v string }

// nodeSysctls is every setting the lab depends on, written in each
// namespace before any link exists, so that every link made later takes
// the default values. New namespaces copy the host's IPv4 conf/all and
// conf/default values (net.core.devconf_inherit_init_net=0), so nothing
// here is left to the host's choices. Each setting is written once, where
// the kernel reads it (the source lines are of Linux 6.18); a write costs a
// path lookup in /proc/sys, and the forwarding, disable_ipv6 and
// ignore_routes_with_linkdown handlers each take the RTNL lock, which the
// other namespaces being built at the same time also want.
func nodeSysctls(role string) []kv {
	fwd := "0"
	if role == Router {
		fwd = "1"
	}
	// ip_forward is conf/all/forwarding. A change to it is copied to
	// conf/default and every device (devinet_sysctl_forward,
	// inet_forward_change), but only a change, and conf/default was copied
	// from the host on its own: it is written too. A change also sets
	// conf/all/accept_redirects to its opposite: that one is written after.
	s := []kv{{"net.ipv4.ip_forward", fwd}, {"net.ipv4.conf.default.forwarding", fwd}}
	p := "net.ipv6.conf.all."
	s = append(s,
		// Writing these in conf/all sets conf/default and every device's
		// as well (addrconf_disable_ipv6, addrconf_fixup_forwarding,
		// addrconf_fixup_linkdown).
		kv{p + "disable_ipv6", "0"},
		kv{p + "forwarding", fwd},
		kv{p + "ignore_routes_with_linkdown", "0"},
		// A link set down and up again keeps its addresses, as IPv4's do.
		// conf/all set is enough: addrconf_ifdown keeps them if either
		// conf/all or the device's value says so.
		kv{p + "keep_addr_on_down", "1"},
	)
	// Addresses are usable at once: duplicate address detection would hold
	// them "tentative" for a second or more, and no other host can claim
	// them in a lab. It is skipped only when both conf/all and the
	// device's accept_dad are below 1 (addrconf_dad_begin).
	s = append(s, kv{"net.ipv6.conf.all.accept_dad", "0"}, kv{"net.ipv6.conf.default.accept_dad", "0"})
	p = "net.ipv6.conf.default."
	s = append(s,
		// The kernel reads these from the device only (conf/all's values
		// are never used), so their defaults for the links to come:
		// an address added before the link was ready stays tentative
		// until its DAD work runs, which addrconf_dad_kick delays by a
		// random 0 to router_solicitation_delay (1 s by default), even
		// with DAD off; 0 runs it at once. No router advertisements are
		// taken and no solicitations sent.
		kv{p + "router_solicitation_delay", "0"},
		kv{p + "accept_ra", "0"},
		kv{p + "router_solicitations", "0"},
	)
	// IPv4 combines conf/all with the device's value (the larger, or
	// either, or both, depending on the setting: IN_DEV_MAXCONF,
	// IN_DEV_ORCONF, IN_DEV_ANDCONF), and a new device takes
	// conf/default: both are written.
	for _, scope := range []string{"all", "default"} {
		p := "net.ipv4.conf." + scope + "."
		s = append(s,
			kv{p + "rp_filter", "0"},
			kv{p + "accept_redirects", "0"},
			kv{p + "send_redirects", "0"},
			kv{p + "accept_local", "0"},
			// A route through a link without carrier stays in use, so a
			// crashed host is not turned into "no route" (ICMP net
			// unreachable) by the router.
			kv{p + "ignore_routes_with_linkdown", "0"},
		)
	}
	s = append(s,
		// No per-destination RTT or ssthresh carried from one connection
		// to the next: each experiment starts from the same state.
		kv{"net.ipv4.tcp_no_metrics_save", "1"},
	)
	if role == Router {
		// The router answers every rejected packet: rate limiting would
		// make the ICMP seen depend on how many came before.
		s = append(s, kv{"net.ipv4.icmp_ratelimit", "0"}, kv{"net.ipv4.icmp_msgs_per_sec", "100000"},
			kv{"net.ipv6.icmp.ratelimit", "0"})
	}
	return s
}

// Up creates the lab: three namespaces, two veth pairs created directly in
// their namespaces, addresses, routes and permanent neighbour entries. It
// records a state file first, so a crash at any point leaves something
// `tcplab clean` can find. On error, everything created is removed.
func (l *Lab) Up(kind string) (err error) {
	if err := writeState(l.ID, kind); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = l.Down()
		}
	}()
	// The namespaces are independent, and making one is mostly the
	// kernel setting up its per-namespace state: make all three at once,
	// and join each pair as soon as its two namespaces exist. The pairs
	// share only the router's handle, which serializes its own requests.
	router, client, server := started(l.Router.create), started(l.Client.create), started(l.Server.create)
	pair := func(n *Node, made func() error) func() error {
		return func() error {
			if router() != nil || made() != nil {
				return nil // reported below
			}
			return l.connect(n)
		}
	}
	cerr := parallel(pair(l.Client, client), pair(l.Server, server))
	if err := errors.Join(router(), client(), server(), cerr); err != nil {
		return err
	}
	return markReady(l.ID)
}

// parallel runs the functions concurrently and joins their errors.
func parallel(fns ...func() error) error {
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// started runs fn on its own goroutine and returns a function that waits
// for it and gives its error, to any number of callers.
func started(fn func() error) func() error {
	done := make(chan struct{})
	var err error
	go func() {
		err = fn()
		close(done)
	}()
	return func() error {
		<-done
		return err
	}
}

// loopback is every namespace's lo: the kernel always gives it index 1
// (LOOPBACK_IFINDEX), so it needs no lookup.
var loopback = &netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: "lo", Index: 1}}

// create makes the node's namespace and, on the thread that made it and is
// still inside, writes the node's sysctls, opens its netlink handle and
// brings loopback up.
func (n *Node) create() error {
	closing.RLock()
	defer closing.RUnlock()
	if isClosing {
		return ErrShuttingDown
	}
	var h *netlink.Handle
	ns, err := createNamedNS(n.NSName, func() error {
		for _, s := range nodeSysctls(n.Role) {
			if err := writeSysctl(s.k, s.v); err != nil {
				return fmt.Errorf("configure %s: %w", n.NSName, err)
			}
		}
		var err error
		if h, err = netlink.NewHandle(unix.NETLINK_ROUTE); err != nil {
			return fmt.Errorf("open netlink in %s: %w", n.NSName, err)
		}
		if err := h.LinkSetUp(loopback); err != nil {
			return fmt.Errorf("set lo up in %s: %w", n.NSName, err)
		}
		return nil
	})
	if err != nil {
		if h != nil {
			h.Close()
		}
		return err
	}
	n.mu.Lock()
	n.ns, n.h = ns, h
	n.mu.Unlock()
	return nil
}

// connect joins node `other` to the router with a veth pair created in the
// router's namespace with its peer created directly in other's namespace:
// neither end ever exists in the host namespace.
func (l *Lab) connect(other *Node) error {
	r := l.Router
	rh, err := r.handle()
	if err != nil {
		return err
	}
	oh, err := other.handle()
	if err != nil {
		return err
	}
	ons, err := other.NS()
	if err != nil {
		return err
	}
	rName, oName := LinkName(l.ID, r.Role, other.Role), LinkName(l.ID, other.Role, r.Role)
	rMAC, oMAC := MAC(l.ID, r.Role, other.Role), MAC(l.ID, other.Role, r.Role)
	// One queue each way: a lab carries a flow or two, and every queue is
	// more objects the kernel registers while it holds the RTNL lock. The
	// router's end is created up; the carrier comes when the peer is.
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: rName, HardwareAddr: rMAC, Flags: net.FlagUp, NumTxQueues: 1, NumRxQueues: 1},
		PeerName:         oName,
		PeerHardwareAddr: oMAC,
		PeerNamespace:    netlink.NsFd(int(ons)),
		PeerNumTxQueues:  1,
		PeerNumRxQueues:  1,
	}
	if err := rh.LinkAdd(veth); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("create veth %s<->%s: the kernel has no veth support (CONFIG_VETH): %w", rName, oName, err)
		}
		return fmt.Errorf("create veth %s<->%s: %w", rName, oName, err)
	}
	// LinkAdd has looked the router's end up to fill in its index.
	var rl netlink.Link = veth
	if veth.Index == 0 {
		if rl, err = rh.LinkByName(rName); err != nil {
			return fmt.Errorf("find %s in %s: %w", rName, r.NSName, err)
		}
	}
	ol, err := oh.LinkByName(oName)
	if err != nil {
		return fmt.Errorf("find %s in %s: %w", oName, other.NSName, err)
	}
	if err := oh.LinkSetUp(ol); err != nil {
		return fmt.Errorf("set up %s: %w", oName, err)
	}
	if err := l.wire(other, rl, ol); err != nil {
		return err
	}
	return waitUsable(r, rName, other, oName)
}

// waitUsable returns once the link between node a's end aName and node b's
// end bName carries frames and IPv6 can use it, at both ends (linkNotReady
// says what that takes).
func waitUsable(a *Node, aName string, b *Node, bName string) error {
	if err := a.waitReady(aName, 5*time.Second); err != nil {
		return err
	}
	return b.waitReady(bName, 5*time.Second)
}

// waitReady waits until the node's end name of a link is usable. It looks
// first, and only if something is missing subscribes to the namespace's
// link, IPv6 address and IPv6 route notifications, looks again (no change
// can fall between the two), and then looks once more after each
// notification. At the end of Up the link is usually usable at the first
// look, and the subscription is saved.
func (n *Node) waitReady(name string, timeout time.Duration) error {
	h, err := n.handle()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	var s *nl.NetlinkSocket
	defer func() {
		if s != nil {
			s.Close()
		}
	}()
	for {
		missing, err := linkNotReady(h, name)
		if errors.Is(err, netlink.ErrDumpInterrupted) {
			continue // a list changed while it was read: read it again
		}
		if err != nil {
			return fmt.Errorf("%s in %s: %w", name, n.NSName, err)
		}
		if missing == "" {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("%s in %s: %s after %v", name, n.NSName, missing, timeout)
		}
		if s == nil {
			err := n.Do(func() (err error) {
				s, err = nl.Subscribe(unix.NETLINK_ROUTE, unix.RTNLGRP_LINK, unix.RTNLGRP_IPV6_IFADDR, unix.RTNLGRP_IPV6_ROUTE)
				return err
			})
			if err != nil {
				return fmt.Errorf("watch %s in %s: %w", name, n.NSName, err)
			}
			continue
		}
		tv := unix.NsecToTimeval(max(left, time.Millisecond).Nanoseconds())
		_ = s.SetReceiveTimeout(&tv)
		// Any notification, an overrun (ENOBUFS) or the deadline (EAGAIN):
		// look again.
		if _, _, err := s.Receive(); err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.ENOBUFS) {
			return fmt.Errorf("watch %s in %s: %w", name, n.NSName, err)
		}
	}
}

// linkNotReady says what the node's end name of a link still lacks before
// it is usable, or "" when nothing. The kernel attaches an end's queueing
// discipline only when its link-watch work sees the carrier
// (linkwatch_do_dev: operational state, then dev_activate), and a frame
// sent before is dropped: the end must be operationally up. Then IPv6:
// the kernel makes each address usable from its own work queue, once it
// has seen the carrier (ipv6NotReady).
func linkNotReady(h *netlink.Handle, name string) (string, error) {
	link, err := h.LinkByName(name)
	if err != nil {
		return "", fmt.Errorf("find the link: %w", err)
	}
	if st := link.Attrs().OperState; st != netlink.OperUp {
		return "operational state " + st.String() + ", not up", nil
	}
	return ipv6NotReady(h, link)
}

// wire gives the link between the router (rl) and node other (ol) its
// addresses, permanent neighbour entries and the node's default routes, in
// both families. It is idempotent: a link set down loses its neighbours
// and routes, and LinkUp calls it again to restore them.
func (l *Lab) wire(other *Node, rl, ol netlink.Link) error {
	rh, err := l.Router.handle()
	if err != nil {
		return err
	}
	oh, err := other.handle()
	if err != nil {
		return err
	}
	rName, oName := rl.Attrs().Name, ol.Attrs().Name
	rMAC, oMAC := MAC(l.ID, Router, other.Role), MAC(l.ID, other.Role, Router)
	var steps []struct {
		what string
		do   func() error
	}
	step := func(what string, do func() error) {
		steps = append(steps, struct {
			what string
			do   func() error
		}{what, do})
	}
	for _, a := range addressing(other.Role) {
		step("address "+rName, func() error { return rh.AddrReplace(rl, addr(a.router, a.bits)) })
		step("address "+oName, func() error { return oh.AddrReplace(ol, addr(a.node, a.bits)) })
		// Permanent neighbour entries: no ARP or neighbour discovery
		// before the first packet, and a crashed host stays silent. With
		// a dynamic entry the router would, a few seconds after the
		// host's link died, fail to resolve it and answer the client with
		// ICMP host unreachable (the crash-reported fault).
		step("neighbour on "+rName, func() error { return rh.NeighSet(permanentNeigh(rl, a.node, oMAC)) })
		step("neighbour on "+oName, func() error { return oh.NeighSet(permanentNeigh(ol, a.router, rMAC)) })
		step("default route in "+other.NSName, func() error {
			return oh.RouteReplace(&netlink.Route{LinkIndex: ol.Attrs().Index, Gw: a.router})
		})
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
	}
	return nil
}

// Rewire restores the addresses, neighbours and routes of the link between
// the router and node role, after the link was set down and up.
func (l *Lab) Rewire(role string) error {
	other := l.Node(role)
	if other == nil || role == Router {
		return fmt.Errorf("rewire %s: not a client or server", role)
	}
	rh, err := l.Router.handle()
	if err != nil {
		return err
	}
	oh, err := other.handle()
	if err != nil {
		return err
	}
	rl, err := rh.LinkByName(LinkName(l.ID, Router, role))
	if err != nil {
		return fmt.Errorf("find the router's link to %s: %w", role, err)
	}
	ol, err := oh.LinkByName(LinkName(l.ID, role, Router))
	if err != nil {
		return fmt.Errorf("find %s's link to the router: %w", role, err)
	}
	return l.wire(other, rl, ol)
}

// addr is an address without duplicate address detection: IPv6 addresses
// are usable at once.
func addr(ip net.IP, bits int) *netlink.Addr {
	a := &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, len(ip)*8)}}
	if ip.To4() == nil {
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

func permanentNeigh(l netlink.Link, ip net.IP, mac net.HardwareAddr) *netlink.Neigh {
	family := unix.AF_INET6
	if ip.To4() != nil {
		family = unix.AF_INET
	}
	return &netlink.Neigh{
		LinkIndex:    l.Attrs().Index,
		Family:       family,
		State:        netlink.NUD_PERMANENT,
		IP:           ip,
		HardwareAddr: mac,
	}
}

// Reconnect recreates the veth pair between the router and node `role` with
// the same names, addresses and MACs, after that node's namespace was
// recreated (a reboot). The old pair must be gone.
func (l *Lab) Reconnect(role string) error {
	n := l.Node(role)
	if n == nil || role == Router {
		return fmt.Errorf("reconnect %s: only the client or the server can be reconnected", role)
	}
	// connect returns once both families can use the link.
	return l.connect(n)
}

// ipv6NotReady says what IPv6 on link still lacks, or "" when it is ready:
// a link-local address, no address still tentative (an address added
// before the link was ready stays so until the kernel's DAD work for it
// runs, one work item per address), and every address's host route in
// the local table. The DAD work clears the tentative flag before it
// inserts that route (addrconf_dad_begin, then addrconf_dad_completed and
// __ipv6_ifa_notify), and until then a packet to the address is not
// delivered locally: a SYN in that window is dropped.
func ipv6NotReady(h *netlink.Handle, link netlink.Link) (string, error) {
	addrs, err := h.AddrList(link, unix.AF_INET6)
	if err != nil {
		return "", fmt.Errorf("list addresses: %w", err)
	}
	linkLocal := false
	for _, a := range addrs {
		if a.Flags&unix.IFA_F_TENTATIVE != 0 {
			return "address " + a.IP.String() + " still tentative", nil
		}
		linkLocal = linkLocal || a.IP.IsLinkLocalUnicast()
	}
	if !linkLocal {
		return "no usable IPv6 link-local address", nil
	}
	routes, err := h.RouteListFiltered(unix.AF_INET6, &netlink.Route{Table: unix.RT_TABLE_LOCAL}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return "", fmt.Errorf("list local routes: %w", err)
	}
	for _, a := range addrs {
		found := false
		for _, r := range routes {
			if r.Type == unix.RTN_LOCAL && r.Dst != nil && r.Dst.IP.Equal(a.IP) {
				found = true
				break
			}
		}
		if !found {
			return "address " + a.IP.String() + " has no local route yet", nil
		}
	}
	return "", nil
}

// Recreate makes a fresh namespace for node n under the same name, with the
// lab's sysctls and loopback up. The caller has deleted the old one.
func (n *Node) Recreate() error {
	n.release()
	return n.create()
}

// Delete unmounts the node's namespace, after closing what tcplab held in
// it. The kernel frees the namespace once no process or socket refers to it.
func (n *Node) Delete() error {
	n.release()
	return deleteNamedNS(n.NSName)
}
