package capture

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The privileged tests build two fresh network namespaces joined by a veth
// pair: A has va (198.51.100.1/25), B has vb (198.51.100.2/25). Neither
// end of the pair ever exists in the host namespace, and the namespaces go
// away when the test drops its handles.

var (
	ipA = net.IPv4(198, 51, 100, 1).To4()
	ipB = net.IPv4(198, 51, 100, 2).To4()
)

func requireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("skipping: needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to create network namespaces and AF_PACKET sockets")
	}
}

type lab struct {
	nsA, nsB       netns.NsHandle
	hA, hB         *netlink.Handle
	enterA, enterB Enter
}

// enterNS returns an Enter for ns. fn runs on a fresh goroutine with a
// locked thread; if switching back fails the thread stays locked, so the
// runtime discards it instead of reusing it in the wrong namespace.
func enterNS(ns netns.NsHandle) Enter {
	return func(fn func() error) error {
		errc := make(chan error, 1)
		go func() {
			runtime.LockOSThread()
			orig, err := netns.Get()
			if err != nil {
				runtime.UnlockOSThread()
				errc <- err
				return
			}
			defer orig.Close()
			if err := netns.Set(ns); err != nil {
				errc <- err
				return
			}
			ferr := fn()
			if err := netns.Set(orig); err != nil {
				errc <- fmt.Errorf("switch back: %w", err)
				return
			}
			runtime.UnlockOSThread()
			errc <- ferr
		}()
		return <-errc
	}
}

func newNamespaces() (a, b netns.NsHandle, err error) {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		// netns.New moves the thread into the new namespace.
		a, err = netns.New()
		if err == nil {
			b, err = netns.New()
		}
		if serr := netns.Set(orig); serr != nil {
			errc <- errors.Join(err, serr) // thread stays locked and is discarded
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	if err = <-errc; err != nil {
		if a.IsOpen() {
			a.Close()
		}
		if b.IsOpen() {
			b.Close()
		}
		return netns.None(), netns.None(), err
	}
	return a, b, nil
}

func newLab(tb testing.TB) *lab {
	tb.Helper()
	requireRoot(tb)
	nsA, nsB, err := newNamespaces()
	if err != nil {
		tb.Fatalf("create namespaces: %v", err)
	}
	tb.Cleanup(func() {
		nsA.Close()
		nsB.Close()
	})
	l := &lab{nsA: nsA, nsB: nsB, enterA: enterNS(nsA), enterB: enterNS(nsB)}
	if l.hA, err = netlink.NewHandleAt(nsA); err != nil {
		tb.Fatalf("netlink handle: %v", err)
	}
	tb.Cleanup(l.hA.Close)
	if l.hB, err = netlink.NewHandleAt(nsB); err != nil {
		tb.Fatalf("netlink handle: %v", err)
	}
	tb.Cleanup(l.hB.Close)

	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: "va"},
		PeerName:      "vb",
		PeerNamespace: netlink.NsFd(int(nsB)),
	}
	if err := l.hA.LinkAdd(veth); err != nil {
		tb.Fatalf("add veth: %v", err)
	}
	configure(tb, l.hA, "va", "198.51.100.1/25")
	configure(tb, l.hB, "vb", "198.51.100.2/25")
	waitOperUp(tb, l.hA, "va")
	waitOperUp(tb, l.hB, "vb")
	return l
}

// waitOperUp waits until ifname is operationally up. Until then the kernel
// may not have activated the device's queueing discipline (this happens
// asynchronously, rate-limited to once a second, after carrier comes on),
// and frames sent on it are silently dropped before any capture sees them.
func waitOperUp(tb testing.TB, h *netlink.Handle, ifname string) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		link, err := h.LinkByName(ifname)
		if err != nil {
			tb.Fatalf("link %s: %v", ifname, err)
		}
		if link.Attrs().OperState == netlink.OperUp {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s not operationally up: %v", ifname, link.Attrs().OperState)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// configure brings lo and ifname up and gives ifname the address cidr.
func configure(tb testing.TB, h *netlink.Handle, ifname, cidr string) {
	tb.Helper()
	for _, name := range []string{"lo", ifname} {
		link, err := h.LinkByName(name)
		if err != nil {
			tb.Fatalf("link %s: %v", name, err)
		}
		if name == ifname {
			addr, err := netlink.ParseAddr(cidr)
			if err != nil {
				tb.Fatal(err)
			}
			if err := h.AddrAdd(link, addr); err != nil {
				tb.Fatalf("address %s on %s: %v", cidr, name, err)
			}
		}
		if err := h.LinkSetUp(link); err != nil {
			tb.Fatalf("set %s up: %v", name, err)
		}
	}
}

func startCapture(tb testing.TB, enter Enter, ifname, point string) *Capture {
	tb.Helper()
	c, err := Start(enter, ifname, point)
	if err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() { c.Stop() })
	return c
}

// dialRefused connects from B to a port on dst where nothing listens, which
// produces a SYN answered by RST,ACK. It returns once the RST arrived.
func (l *lab) dialRefused(t *testing.T, src, dst net.IP, sport, dport int) {
	t.Helper()
	err := l.enterB(func() error {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src, Port: sport}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp4", net.JoinHostPort(dst.String(), strconv.Itoa(dport)))
		if err == nil {
			c.Close()
			return errors.New("connection accepted, want refused")
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
}

// udpUnreachable sends a datagram from B to a closed port on A and waits for
// the resulting ICMP port unreachable (reported as ECONNREFUSED).
func (l *lab) udpUnreachable(t *testing.T, sport, dport int) {
	t.Helper()
	err := l.enterB(func() error {
		c, err := net.DialUDP("udp4", &net.UDPAddr{IP: ipB, Port: sport}, &net.UDPAddr{IP: ipA, Port: dport})
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Write([]byte("hello")); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 16)); !errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("read after send: %v, want ECONNREFUSED", err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("udp: %v", err)
	}
}

type match struct {
	i int
	p Packet
	d Decoded
}

func find(pkts []Packet, pred func(Packet, Decoded) bool) []match {
	var ms []match
	for i, p := range pkts {
		if d := Decode(p.Data); pred(p, d) {
			ms = append(ms, match{i, p, d})
		}
	}
	return ms
}

func findOne(t *testing.T, what string, pkts []Packet, pred func(Packet, Decoded) bool) match {
	t.Helper()
	ms := find(pkts, pred)
	if len(ms) != 1 {
		t.Fatalf("found %d %s, want 1; capture:\n%s", len(ms), what, dump(pkts))
	}
	return ms[0]
}

func dump(pkts []Packet) string {
	var b strings.Builder
	for _, p := range pkts {
		dir := "in "
		if p.Outgoing {
			dir = "out"
		}
		fmt.Fprintf(&b, "  %s %s %s %s\n", p.Time.Format("15:04:05.000000000"), p.Point, dir, Decode(p.Data))
	}
	return b.String()
}

func tcpSeg(src net.IP, sport int, dst net.IP, dport int, flags string) func(Packet, Decoded) bool {
	return func(_ Packet, d Decoded) bool {
		return d.Proto == "tcp" && d.Flags.String() == flags &&
			d.Src == src.String() && int(d.SrcPort) == sport && d.Dst == dst.String() && int(d.DstPort) == dport
	}
}

func TestCaptureRefusedConnection(t *testing.T) {
	l := newLab(t)
	before := time.Now()
	capA := startCapture(t, l.enterA, "va", "server")
	capB := startCapture(t, l.enterB, "vb", "client")

	l.dialRefused(t, ipB, ipA, 40000, 7)
	l.udpUnreachable(t, 40001, 9)

	pktsA, err := capA.Stop()
	if err != nil {
		t.Fatalf("Stop A: %v", err)
	}
	pktsB, err := capB.Stop()
	if err != nil {
		t.Fatalf("Stop B: %v", err)
	}
	after := time.Now()
	t.Logf("server side:\n%s", dump(pktsA))
	t.Logf("client side:\n%s", dump(pktsB))

	for _, side := range []struct {
		name string
		c    *Capture
		pkts []Packet
		// whether frames sent by B are outgoing at this capture point
		fromBOut bool
	}{{"server", capA, pktsA, false}, {"client", capB, pktsB, true}} {
		t.Run(side.name, func(t *testing.T) {
			pkts := side.pkts
			syn := findOne(t, "SYN", pkts, tcpSeg(ipB, 40000, ipA, 7, "SYN"))
			rst := findOne(t, "RST,ACK", pkts, tcpSeg(ipA, 7, ipB, 40000, "RST,ACK"))
			if syn.p.Outgoing != side.fromBOut || rst.p.Outgoing == side.fromBOut {
				t.Errorf("Outgoing: SYN %v, RST,ACK %v; want %v, %v", syn.p.Outgoing, rst.p.Outgoing, side.fromBOut, !side.fromBOut)
			}
			if syn.d.Len != 0 || syn.d.MSS == 0 || syn.d.SrcMAC == "" {
				t.Errorf("SYN decoded as %+v", syn.d)
			}
			if rst.d.Ack != syn.d.Seq+1 || rst.d.Seq != 0 {
				t.Errorf("RST,ACK seq=%d ack=%d, want seq=0 ack=%d", rst.d.Seq, rst.d.Ack, syn.d.Seq+1)
			}
			if !(syn.i < rst.i && syn.p.Time.Before(rst.p.Time)) {
				t.Errorf("SYN (#%d %v) not before RST,ACK (#%d %v)", syn.i, syn.p.Time, rst.i, rst.p.Time)
			}
			if want := fmt.Sprintf("198.51.100.2:40000 > 198.51.100.1:7 SYN seq=%d len=0", syn.d.Seq); syn.d.String() != want {
				t.Errorf("SYN String() = %q, want %q", syn.d.String(), want)
			}

			// The client resolves the server's address first.
			arp := find(pkts, func(p Packet, d Decoded) bool {
				return d.Proto == "arp" && d.ARPOp == "request" && d.Src == ipB.String() && d.Dst == ipA.String()
			})
			if len(arp) == 0 || arp[0].p.Outgoing != side.fromBOut || arp[0].i > syn.i {
				t.Errorf("no ARP request from B before the SYN with Outgoing=%v", side.fromBOut)
			}

			udp := findOne(t, "UDP datagram", pkts, func(_ Packet, d Decoded) bool {
				return d.Proto == "udp" && d.SrcPort == 40001 && d.DstPort == 9
			})
			icmp := findOne(t, "ICMP port unreachable", pkts, func(_ Packet, d Decoded) bool {
				return d.Proto == "icmp" && d.ICMPType == 3 && d.ICMPCode == 3
			})
			in := icmp.d.ICMPInner
			if in == nil || in.Proto != "udp" || in.Src != ipB.String() || in.Dst != ipA.String() || in.SrcPort != 40001 || in.DstPort != 9 {
				t.Errorf("ICMP decoded as %+v inner %+v", icmp.d, in)
			}
			if udp.p.Outgoing != side.fromBOut || icmp.p.Outgoing == side.fromBOut || udp.i > icmp.i {
				t.Errorf("UDP #%d out=%v, ICMP #%d out=%v", udp.i, udp.p.Outgoing, icmp.i, icmp.p.Outgoing)
			}

			// Kernel timestamps: within the test's time window and, apart
			// from scheduling jitter between the receive and transmit paths,
			// in queue order.
			const jitter = 5 * time.Millisecond
			for i, p := range pkts {
				if p.Time.Before(before) || p.Time.After(after) {
					t.Errorf("packet %d time %v outside [%v, %v]", i, p.Time, before, after)
				}
				if i > 0 && p.Time.Before(pkts[i-1].Time.Add(-jitter)) {
					t.Errorf("packet %d time %v before packet %d time %v", i, p.Time, i-1, pkts[i-1].Time)
				}
				if p.Point != side.name || p.WireLen() != len(p.Data) {
					t.Errorf("packet %d: point %q, %d of %d bytes", i, p.Point, len(p.Data), p.WireLen())
				}
			}
			if d := side.c.Drops(); d != 0 {
				t.Errorf("Drops() = %d", d)
			}

			// Pcap round trip, checked by pcapgo and, if present, tcpdump.
			path := filepath.Join(t.TempDir(), side.name+".pcap")
			if err := WritePcap(path, pkts); err != nil {
				t.Fatal(err)
			}
			back, err := ReadPcap(path)
			if err != nil {
				t.Fatal(err)
			}
			comparePackets(t, pkts, back)
			runTcpdump(t, path, len(pkts),
				"198.51.100.2.40000 > 198.51.100.1.7: Flags [S]",
				"198.51.100.1.7 > 198.51.100.2.40000: Flags [R.]",
				"udp port 9 unreachable",
				"Request who-has 198.51.100.1 tell 198.51.100.2")
		})
	}

	// Stop is idempotent.
	again, err := capA.Stop()
	if err != nil || len(again) != len(pktsA) {
		t.Errorf("second Stop: %d packets, %v; want %d, nil", len(again), err, len(pktsA))
	}
}

// TestStopDrainsQueue sends a burst and stops right after the receiving
// application saw the last datagram, so frames are likely still queued in
// the capture socket: none may be lost.
func TestStopDrainsQueue(t *testing.T) {
	l := newLab(t)
	const n = 2000
	var rc *net.UDPConn
	err := l.enterA(func() error {
		var err error
		rc, err = net.ListenUDP("udp4", &net.UDPAddr{IP: ipA, Port: 5000})
		if err != nil {
			return err
		}
		// Hold the whole burst even if this test reads slowly.
		raw, err := rc.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		raw.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20)
		})
		return serr
	})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer rc.Close()

	c := startCapture(t, l.enterA, "va", "server")
	var wg sync.WaitGroup
	received := make(map[string]bool)
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 64)
		for len(received) < n {
			rc.SetReadDeadline(time.Now().Add(5 * time.Second))
			k, err := rc.Read(buf)
			if err != nil {
				return
			}
			received[string(buf[:k])] = true
		}
	}()
	err = l.enterB(func() error {
		sc, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: ipA, Port: 5000})
		if err != nil {
			return err
		}
		defer sc.Close()
		for i := range n {
			if _, err := sc.Write([]byte("datagram " + strconv.Itoa(i))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	wg.Wait()
	pkts, err := c.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if len(received) != n {
		t.Fatalf("application received %d of %d datagrams", len(received), n)
	}
	captured := 0
	for _, p := range pkts {
		d := Decode(p.Data)
		if d.Proto == "udp" && d.DstPort == 5000 && !p.Outgoing {
			captured++
		}
	}
	if captured != n || c.Drops() != 0 {
		t.Errorf("captured %d of %d datagrams, %d drops", captured, n, c.Drops())
	}
}

// TestCaptureBulkTransfer moves 4 MiB over TCP from B to A and checks that
// the captured segments (GSO frames larger than the MTU included) carry
// every byte exactly once.
func TestCaptureBulkTransfer(t *testing.T) {
	l := newLab(t)
	const size = 4 << 20
	var ln net.Listener
	if err := l.enterA(func() (err error) { ln, err = net.Listen("tcp4", "198.51.100.1:5001"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c := startCapture(t, l.enterA, "va", "server")

	got := make(chan int64, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer conn.Close()
		n, _ := io.Copy(io.Discard, conn)
		got <- n
	}()
	err := l.enterB(func() error {
		conn, err := net.Dial("tcp4", "198.51.100.1:5001")
		if err != nil {
			return err
		}
		if _, err := conn.Write(make([]byte, size)); err != nil {
			conn.Close()
			return err
		}
		return conn.Close()
	})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	if n := <-got; n != size {
		t.Fatalf("receiver got %d bytes, want %d", n, size)
	}
	pkts, err := c.Stop()
	if err != nil {
		t.Fatal(err)
	}
	// Every byte the receiver got passed the capture point; retransmissions
	// may overlap, so check that the segments cover the stream exactly.
	var base uint32
	var segs [][2]int
	largest := 0
	for _, p := range pkts {
		d := Decode(p.Data)
		if d.Proto != "tcp" || d.DstPort != 5001 || p.Outgoing {
			continue
		}
		if d.Flags == SYN {
			base = d.Seq + 1
		}
		if d.Len > 0 {
			segs = append(segs, [2]int{int(d.Seq - base), int(d.Seq-base) + d.Len})
			largest = max(largest, p.WireLen())
		}
	}
	slices.SortFunc(segs, func(a, b [2]int) int { return a[0] - b[0] })
	covered := 0
	for _, s := range segs {
		if s[0] > covered {
			break
		}
		covered = max(covered, s[1])
	}
	t.Logf("%d frames, %d data segments, largest frame %d bytes, %d drops", len(pkts), len(segs), largest, c.Drops())
	if covered != size || c.Drops() != 0 {
		t.Errorf("captured segments cover %d bytes of the stream, want %d; %d drops", covered, size, c.Drops())
	}
}

// TestStopAfterInterfaceDeleted deletes the veth pair while capturing:
// Stop still returns what was captured, without error.
func TestStopAfterInterfaceDeleted(t *testing.T) {
	l := newLab(t)
	c := startCapture(t, l.enterA, "va", "server")
	l.dialRefused(t, ipB, ipA, 40000, 7)
	link, err := l.hA.LinkByName("va")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.hA.LinkDel(link); err != nil {
		t.Fatalf("delete veth: %v", err)
	}
	pkts, err := c.Stop()
	if err != nil {
		t.Fatalf("Stop after delete: %v", err)
	}
	findOne(t, "SYN", pkts, tcpSeg(ipB, 40000, ipA, 7, "SYN"))
	findOne(t, "RST,ACK", pkts, tcpSeg(ipA, 7, ipB, 40000, "RST,ACK"))
	if !c.InterfaceDown() {
		t.Error("InterfaceDown() = false after the interface was deleted")
	}
}

// TestQueuedFramesSurviveInterfaceDeletion checks the kernel behaviour Stop
// relies on: frames queued before the interface disappears stay readable
// after the one-off ENETDOWN. The reader is started only after the
// deletion, so all frames are still queued then.
func TestQueuedFramesSurviveInterfaceDeletion(t *testing.T) {
	l := newLab(t)
	var fd int
	if err := l.enterA(func() (err error) { fd, err = openSocket("va"); return err }); err != nil {
		t.Fatal(err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	c := &Capture{point: "server", ifname: "va", fd: fd, wake: wake, done: make(chan struct{})}

	l.dialRefused(t, ipB, ipA, 40000, 7)
	link, err := l.hA.LinkByName("va")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.hA.LinkDel(link); err != nil {
		t.Fatalf("delete veth: %v", err)
	}
	go c.run()
	pkts, err := c.Stop()
	if err != nil {
		t.Fatalf("Stop: %v", err)
	}
	findOne(t, "SYN", pkts, tcpSeg(ipB, 40000, ipA, 7, "SYN"))
	findOne(t, "RST,ACK", pkts, tcpSeg(ipA, 7, ipB, 40000, "RST,ACK"))
	if !c.InterfaceDown() {
		t.Error("ENETDOWN was not seen")
	}
}

// TestVLANTagsRestored sends tagged frames from B with a raw socket. On
// receive the kernel strips the tag into packet metadata before packet taps
// see the frame, so the capture on A must put it back: the frames captured
// on both ends must equal the frames sent, byte for byte.
func TestVLANTagsRestored(t *testing.T) {
	l := newLab(t)
	linkA, err := l.hA.LinkByName("va")
	if err != nil {
		t.Fatal(err)
	}
	linkB, err := l.hB.LinkByName("vb")
	if err != nil {
		t.Fatal(err)
	}
	macA, macB := linkA.Attrs().HardwareAddr, linkB.Attrs().HardwareAddr
	udpFrame := func(tags ...gopacket.SerializableLayer) []byte {
		ip := ip4(ipB, ipA, layers.IPProtocolUDP)
		udp := &layers.UDP{SrcPort: 40002, DstPort: 9}
		udp.SetNetworkLayerForChecksum(ip)
		typ := layers.EthernetTypeDot1Q
		if q, ok := tags[0].(*layers.Dot1Q); ok && q.Type == layers.EthernetTypeDot1Q {
			typ = layers.EthernetTypeQinQ
		}
		ls := append([]gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: macB, DstMAC: macA, EthernetType: typ}}, tags...)
		return serialize(t, append(ls, ip, udp, gopacket.Payload("tagged"))...)
	}
	frames := [][]byte{
		udpFrame(&layers.Dot1Q{Priority: 3, VLANIdentifier: 10, Type: layers.EthernetTypeIPv4}),
		udpFrame(&layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeDot1Q},
			&layers.Dot1Q{VLANIdentifier: 10, Type: layers.EthernetTypeIPv4}),
	}

	cA := startCapture(t, l.enterA, "va", "server")
	cB := startCapture(t, l.enterB, "vb", "client")
	err = l.enterB(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		to := &unix.SockaddrLinklayer{Ifindex: linkB.Attrs().Index, Halen: 6}
		copy(to.Addr[:], macA)
		for _, f := range frames {
			if err := unix.Sendto(fd, f, 0, to); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("send raw frames: %v", err)
	}
	// Nothing answers these frames, so wait until A has read them.
	deadline := time.Now().Add(5 * time.Second)
	for len(find(cA.Snapshot(), func(_ Packet, d Decoded) bool { return d.SrcPort == 40002 })) < len(frames) {
		if time.Now().After(deadline) {
			t.Fatal("tagged frames did not reach A")
		}
		time.Sleep(time.Millisecond)
	}

	for _, c := range []*Capture{cA, cB} {
		pkts, err := c.Stop()
		if err != nil {
			t.Fatal(err)
		}
		got := find(pkts, func(_ Packet, d Decoded) bool { return d.SrcPort == 40002 })
		if len(got) != len(frames) {
			t.Fatalf("%s: captured %d tagged frames, want %d:\n%s", c.Point(), len(got), len(frames), dump(pkts))
		}
		for i, m := range got {
			if !bytes.Equal(m.p.Data, frames[i]) || m.p.WireLen() != len(frames[i]) || m.p.Outgoing != (c == cB) {
				t.Errorf("%s: frame %d captured as (outgoing=%v)\n% x\nsent\n% x", c.Point(), i, m.p.Outgoing, m.p.Data, frames[i])
			}
			if want := []uint16{10, 100}[i]; m.d.VLAN != want {
				t.Errorf("%s: frame %d decoded VLAN %d, want %d", c.Point(), i, m.d.VLAN, want)
			}
		}
	}
}

func TestStartErrors(t *testing.T) {
	l := newLab(t)
	if c, err := Start(l.enterA, "nosuchif", "x"); err == nil {
		c.Stop()
		t.Error("Start on a missing interface succeeded")
	}
	// The interface lives in B only: looking it up must happen in A.
	if c, err := Start(l.enterA, "vb", "x"); err == nil {
		c.Stop()
		t.Error("Start found an interface of another namespace")
	}
	if _, err := Start(func(func() error) error { return nil }, "va", "x"); err == nil {
		t.Error("Start succeeded although enter never ran the function")
	}
	enterErr := errors.New("no such namespace")
	if _, err := Start(func(func() error) error { return enterErr }, "va", "x"); !errors.Is(err, enterErr) {
		t.Errorf("Start with failing enter: %v, want %v", err, enterErr)
	}
}

// TestCaptureDownInterface starts on an interface that is down and sees
// traffic once it comes up.
func TestCaptureDownInterface(t *testing.T) {
	l := newLab(t)
	link, err := l.hA.LinkByName("va")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.hA.LinkSetDown(link); err != nil {
		t.Fatal(err)
	}
	c := startCapture(t, l.enterA, "va", "server")
	if err := l.hA.LinkSetUp(link); err != nil {
		t.Fatal(err)
	}
	waitOperUp(t, l.hA, "va")
	waitOperUp(t, l.hB, "vb")
	l.dialRefused(t, ipB, ipA, 40000, 7)
	pkts, err := c.Stop()
	if err != nil {
		t.Fatal(err)
	}
	findOne(t, "SYN", pkts, tcpSeg(ipB, 40000, ipA, 7, "SYN"))
}

func BenchmarkStartStop(b *testing.B) {
	l := newLab(b)
	for b.Loop() {
		c, err := Start(l.enterA, "va", "bench")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Stop(); err != nil {
			b.Fatal(err)
		}
	}
}
