package impair_test

import (
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/tcplab/tcplab/impair"
	"github.com/tcplab/tcplab/topology"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The middlebox faults on a real lab: each effect observed through real
// connections between the client and the server, then cleared.

const mbPort = 8080

// serve listens on the server's port in both families and hands each
// accepted connection over.
func serve(t *testing.T, l *topology.Lab) chan net.Conn {
	t.Helper()
	var ln net.Listener
	if err := l.Server.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", ":"+strconv.Itoa(mbPort))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns <- c
		}
	}()
	return conns
}

// connectPair opens a connection from the client and returns both ends.
func connectPair(t *testing.T, l *topology.Lab, family int, conns chan net.Conn) (client, server net.Conn) {
	t.Helper()
	addr := net.JoinHostPort(topology.Addr(topology.Server, family).String(), strconv.Itoa(mbPort))
	if err := l.Client.Do(func() error {
		var err error
		client, err = net.DialTimeout("tcp", addr, 2*time.Second)
		return err
	}); err != nil {
		t.Fatalf("IPv%d connect: %v", family, err)
	}
	t.Cleanup(func() { client.Close() })
	select {
	case server = <-conns:
		t.Cleanup(func() { server.Close() })
	case <-time.After(2 * time.Second):
		t.Fatalf("IPv%d: the server accepted nothing", family)
	}
	return client, server
}

// readWithin reads n bytes on c within d and returns how many arrived.
func readWithin(c net.Conn, n int, d time.Duration) int {
	_ = c.SetReadDeadline(time.Now().Add(d))
	b := make([]byte, n)
	got, _ := io.ReadFull(c, b)
	return got
}

func routerSysctl(t *testing.T, l *topology.Lab, key string) string {
	t.Helper()
	v, err := l.Router.ReadSysctl(key)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// hostTracksLab tells whether the host's own connection tracker holds an
// entry of a lab address: it must not, the lab's are in its router.
func hostTracksLab(t *testing.T) bool {
	t.Helper()
	for _, fam := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
		flows, err := netlink.ConntrackTableList(netlink.ConntrackTable, fam)
		if err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EPROTONOSUPPORT) {
				return false // no tracker in the host at all
			}
			t.Fatalf("list the host's connection tracking: %v", err)
		}
		for _, f := range flows {
			if topology.RoleOf(f.Forward.SrcIP) != "" || topology.RoleOf(f.Forward.DstIP) != "" {
				return true
			}
		}
	}
	return false
}

// TestStatefulMasquerade: through the stateful router a connection opens
// by its SYN, reaches the server from the router's address, and is tracked
// in the router only; once idle past the timeout it is forgotten and its
// next segment is dropped; clearing restores the path and the kernel's
// timeout.
func TestStatefulMasquerade(t *testing.T) {
	l := newLab(t)
	conns := serve(t, l)
	apply(t, l, impair.Stateful, impair.Options{Timeout: time.Second})
	apply(t, l, impair.Masquerade, impair.Options{})
	if v := routerSysctl(t, l, "net.netfilter.nf_conntrack_tcp_timeout_established"); v != "1" {
		t.Errorf("established timeout %s, want 1", v)
	}
	for _, family := range []int{4, 6} {
		client, server := connectPair(t, l, family, conns)
		routerAddr := topology.RouterServerIP
		if family == 6 {
			routerAddr = topology.RouterServerIP6
		}
		if got := server.RemoteAddr().(*net.TCPAddr).IP; !got.Equal(routerAddr) {
			t.Errorf("IPv%d: the server sees the client as %s, want the router's %s (masquerade)", family, got, routerAddr)
		}
		port := uint16(client.LocalAddr().(*net.TCPAddr).Port)
		tracked, err := impair.Tracked(l, family, mbPort)
		if err != nil {
			t.Fatal(err)
		}
		if len(tracked) != 1 || tracked[0].ClientPort != port {
			t.Fatalf("IPv%d: the router tracks %+v, want the client's port %d", family, tracked, port)
		}
		if hostTracksLab(t) {
			t.Errorf("IPv%d: the host's connection tracker holds a lab connection", family)
		}
		deadline := time.Now().Add(5 * time.Second)
		for len(tracked) > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			if tracked, err = impair.Tracked(l, family, mbPort); err != nil {
				t.Fatal(err)
			}
		}
		if len(tracked) > 0 {
			t.Fatalf("IPv%d: the router still tracks the idle connection after 5 s", family)
		}
		if _, err := client.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if n := readWithin(server, 1, 700*time.Millisecond); n != 0 {
			t.Errorf("IPv%d: a segment of a forgotten connection reached the server", family)
		}
		if tracked, _ = impair.Tracked(l, family, mbPort); len(tracked) != 0 {
			t.Errorf("IPv%d: the dropped mid-stream segment left an entry: %+v", family, tracked)
		}
	}
	clear(t, l, impair.Stateful)
	clear(t, l, impair.Masquerade)
	if v := routerSysctl(t, l, "net.netfilter.nf_conntrack_tcp_timeout_established"); v != "432000" {
		t.Errorf("established timeout after clear %s, want the kernel's 432000", v)
	}
	expectDial(t, l, 4, time.Second, unix.ECONNREFUSED)
	expectDial(t, l, 6, time.Second, unix.ECONNREFUSED)
}

// TestTrackerDiesWithLab: connection tracking state belongs to the
// router's namespace: the host's tracker never sees the lab's connections,
// and when the lab is removed nothing of it remains.
func TestTrackerDiesWithLab(t *testing.T) {
	l := newLab(t)
	var ln net.Listener
	if err := l.Server.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", ":"+strconv.Itoa(mbPort))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	apply(t, l, impair.Stateful, impair.Options{})
	var client net.Conn
	if err := l.Client.Do(func() error {
		var err error
		client, err = net.DialTimeout("tcp", net.JoinHostPort(topology.ServerIP.String(), strconv.Itoa(mbPort)), 2*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if tracked, err := impair.Tracked(l, 4, mbPort); err != nil || len(tracked) != 1 {
		t.Fatalf("the router tracks %+v (%v), want one connection", tracked, err)
	}
	if hostTracksLab(t) {
		t.Error("the host's connection tracker holds a lab connection")
	}
	// The lab's sockets go with it; this process's own must be closed.
	for _, c := range []io.Closer{client, server, ln} {
		c.Close()
	}
	if err := l.Down(); err != nil {
		t.Fatal(err)
	}
	if hostTracksLab(t) {
		t.Error("after Down, the host's connection tracker holds a lab connection")
	}
	if _, err := impair.Tracked(l, 4, mbPort); err == nil {
		t.Error("the router's tracker is still readable after Down")
	}
}

func routerMTU(t *testing.T, l *topology.Lab) int {
	t.Helper()
	h, err := l.Router.Handle()
	if err != nil {
		t.Fatal(err)
	}
	link, err := h.LinkByName(topology.LinkName(l.ID, topology.Router, topology.Server))
	if err != nil {
		t.Fatal(err)
	}
	return link.Attrs().MTU
}

const bigWrite = 4000

// TestMTU: with the router's link to the server at 1280, a 4000-byte
// write still arrives (the router's ICMP teaches the client the path
// MTU); clearing restores 1500.
func TestMTU(t *testing.T) {
	l := newLab(t)
	conns := serve(t, l)
	apply(t, l, impair.MTU, impair.Options{})
	if m := routerMTU(t, l); m != impair.DefaultMTU {
		t.Errorf("MTU %d, want %d", m, impair.DefaultMTU)
	}
	for _, family := range []int{4, 6} {
		client, server := connectPair(t, l, family, conns)
		if _, err := client.Write(make([]byte, bigWrite)); err != nil {
			t.Fatal(err)
		}
		if n := readWithin(server, bigWrite, 2*time.Second); n != bigWrite {
			t.Errorf("IPv%d: %d of %d bytes arrived", family, n, bigWrite)
		}
	}
	clear(t, l, impair.MTU)
	if m := routerMTU(t, l); m != 1500 {
		t.Errorf("MTU after clear %d, want 1500", m)
	}
}

// TestDropTooBig: with the router's ICMP fragmentation needed (packet too
// big) dropped, full-sized segments vanish and the write stalls; cleared,
// the next retransmission draws the ICMP and the data arrives.
func TestDropTooBig(t *testing.T) {
	l := newLab(t)
	conns := serve(t, l)
	apply(t, l, impair.MTU, impair.Options{})
	apply(t, l, impair.DropTooBig, impair.Options{})
	type pair struct{ client, server net.Conn }
	var pairs []pair
	for _, family := range []int{4, 6} {
		c, s := connectPair(t, l, family, conns)
		if _, err := c.Write(make([]byte, bigWrite)); err != nil {
			t.Fatal(err)
		}
		pairs = append(pairs, pair{c, s})
	}
	for i, p := range pairs {
		if n := readWithin(p.server, bigWrite, time.Second); n == bigWrite {
			t.Errorf("IPv%d: the data crossed the black hole", []int{4, 6}[i])
		}
	}
	clear(t, l, impair.DropTooBig)
	for i, p := range pairs {
		// The rest arrives with the next retransmission: backoff from
		// 200 ms puts it within about 3 s.
		if n := readWithin(p.server, bigWrite, 5*time.Second); n == 0 {
			t.Errorf("IPv%d: nothing more arrived after the ICMP was let through", []int{4, 6}[i])
		}
	}
}

// TestPartition: nothing crosses the router either way while partitioned
// (a new connection times out, data waits); healed, the retransmission
// delivers the data.
func TestPartition(t *testing.T) {
	l := newLab(t)
	conns := serve(t, l)
	type pair struct{ client, server net.Conn }
	var pairs []pair
	for _, family := range []int{4, 6} {
		c, s := connectPair(t, l, family, conns)
		pairs = append(pairs, pair{c, s})
	}
	apply(t, l, impair.Partition, impair.Options{})
	expectDial(t, l, 4, 500*time.Millisecond, errTimeout)
	expectDial(t, l, 6, 500*time.Millisecond, errTimeout)
	for i, p := range pairs {
		if _, err := p.client.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := p.server.Write([]byte("y")); err != nil {
			t.Fatal(err)
		}
		if n := readWithin(p.server, 1, 300*time.Millisecond); n != 0 {
			t.Errorf("IPv%d: data crossed the partition", []int{4, 6}[i])
		}
	}
	clear(t, l, impair.Partition)
	for i, p := range pairs {
		if readWithin(p.server, 1, 4*time.Second) != 1 || readWithin(p.client, 1, 4*time.Second) != 1 {
			t.Errorf("IPv%d: the data did not arrive after the heal", []int{4, 6}[i])
		}
	}
}
