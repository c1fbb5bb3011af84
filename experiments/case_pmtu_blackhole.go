package experiments

import (
	"fmt"
	"strconv"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/impair"
	"github.com/tcplab/tcplab/topology"
)

// pmtu-blackhole verifies that a client learns a smaller path MTU from the
// router's ICMP and gets its data through; that with that ICMP filtered
// its full-sized segments vanish until it gives up (ETIMEDOUT); and that
// with net.ipv4.tcp_mtu_probing=1 it detects the black hole after
// retransmission timeouts and lowers its segment size to tcp_base_mss.

const (
	pmtuMTU   = impair.DefaultMTU
	pmtuWrite = 4000 // bytes in one write: more than one small-MTU packet
	baseMSS   = 1024 // net.ipv4.tcp_base_mss's default
	// tcp_retries1 shortened: black hole detection after its time.
	fastRetries1    = 1
	defaultRetries1 = 3
)

const pmtuConnBlackhole, pmtuConnProbing, pmtuConnHealthy = 0, 1, 2

// pmtuOpts: a send buffer that takes the whole write at once, and no
// Nagle delay for its tail.
var pmtuOpts = []Opt{{"SO_SNDBUF", 1 << 16}, {"TCP_NODELAY", 1}}

// flightGiveUp is when an unanswered flight meets tcp_retries n's deadline,
// counted from the write, in this case's black hole: the flight's last
// segment is small enough to pass, the server's SACK for it marks the
// full-sized ones lost, and they are retransmitted at once (fast
// recovery), which starts the deadline (retrans_stamp); the
// retransmission timer then fires one RTO after the last of those
// (lag later) and doubles; the deadline, retries2Model(n), is checked at
// each expiry.
func flightGiveUp(n int, rto, lag time.Duration) time.Duration {
	deadline := retries2Model(n)
	t, step := lag+rto, 2*rto
	for t < deadline {
		t += step
		step = min(2*step, 120*time.Second)
	}
	return t
}

// flightSpan is flightGiveUp over a span of RTOs and lags of up to 20 ms.
func flightSpan(n int, rto [2]time.Duration) *Window {
	w := &Window{Min: flightGiveUp(n, rto[0], 0), Max: flightGiveUp(n, rto[0], 0)}
	for r := rto[0]; r <= rto[1]; r += time.Millisecond {
		for lag := time.Duration(0); lag <= 20*time.Millisecond; lag += time.Millisecond {
			g := flightGiveUp(n, r, lag)
			w.Min, w.Max = min(w.Min, g), max(w.Max, g)
		}
	}
	return w
}

// onePacketPerSegment makes the client's link hand the stack's segments
// to the wire one by one (gso_max_segs 1), as a real NIC does after
// segmentation offload: a veth passes TCP's multi-segment buffers through
// whole, and the captures would show them so.
func (r *Run) onePacketPerSegment() error {
	h, err := r.Lab.Client.Handle()
	if err != nil {
		return err
	}
	name := topology.LinkName(r.Lab.ID, topology.Client, topology.Router)
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find %s: %w", name, err)
	}
	if err := h.LinkSetGSOMaxSegs(l, 1); err != nil {
		return fmt.Errorf("set gso_max_segs of %s: %w", name, err)
	}
	return nil
}

// pmtuRetries are tcp_retries1 and tcp_retries2 under a configuration.
func pmtuRetries(cfg Config) (r1, r2 int) {
	if cfg.KernelDefaults {
		return defaultRetries1, defaultRetries2
	}
	return fastRetries1, fastRetries2
}

// maxPayload is the largest TCP payload a packet of MTU mtu carries in a
// family, with the timestamp option (12 bytes) the lab's connections use.
func maxPayload(family, mtu int) int {
	if family == 6 {
		return mtu - 40 - 20 - 12
	}
	return mtu - 20 - 20 - 12
}

// icmpTooBig matches the router's ICMP fragmentation-needed (ICMPv6 packet
// too big) about a segment of connection i, announcing mtu.
func icmpTooBig(a addrs, family int, port uint16, i int, mtu uint32) func(Pkt) bool {
	typ, code := capture.ICMPDestUnreachable, capture.FragNeeded
	if family == 6 {
		typ, code = capture.ICMP6PacketTooBig, 0
	}
	return func(p Pkt) bool {
		return p.Proto == a.icmp && p.Src == a.router && p.Dst == a.client && p.ICMPType == typ && p.ICMPCode == code &&
			p.MTU == mtu && p.ICMPInner != nil && p.ICMPInner.SrcPort == connPort(i) && p.ICMPInner.DstPort == port
	}
}

var _ = register(&Case{
	ID: "pmtu-blackhole", No: 17,
	Title:   "Path MTU discovery fails",
	Summary: "the router's link to the server has a smaller MTU; with its ICMP filtered, full-sized segments vanish (ETIMEDOUT) unless tcp_mtu_probing detects the black hole; with the ICMP, the client adapts at once",
	Trigger: fmt.Sprintf("the router's link to the server carries %d bytes (the server's end keeps 1500, so its SYN-ACK advertises the MSS of a 1500-byte link; the client's link sends one segment per packet, gso_max_segs 1); "+
		"the client writes %d bytes on each of three connections: with the router's ICMP fragmentation-needed (ICMPv6 packet too big) dropped, "+
		"again with net.ipv4.tcp_mtu_probing=1, and with the ICMP let through", pmtuMTU, pmtuWrite),
	Textbook: "UNP 2.11, RFC 1191 (RFC 8201 for IPv6): a router that cannot forward a packet with DF set answers ICMP fragmentation needed with the next-hop MTU, and the sender lowers its segment size. " +
		"If that ICMP is filtered, full-sized segments vanish and the connection stalls (RFC 2923); RFC 4821 packetization-layer probing detects the black hole.",
	Linux: func(t Timing) string {
		return fmt.Sprintf("As the textbook. With the ICMP dropped, the full-sized segments are retransmitted until tcp_retries2's time and recv fails with ETIMEDOUT. "+
			"With net.ipv4.tcp_mtu_probing=1 (it also governs IPv6), once tcp_retries1's time has passed the client takes the retransmission timeouts for a black hole "+
			"and drops its segment size to net.ipv4.tcp_base_mss (%d): the data gets through. With the ICMP delivered, the client lowers its MSS to fit %d bytes "+
			"and retransmits at once. %s.", baseMSS, pmtuMTU, t.Basis)
	},
	Course: func(t Timing) []Step {
		r1, r2 := fastRetries1, fastRetries2
		if knob(t.Settings, "net.ipv4.tcp_retries2") == defaultRetries2 {
			r1, r2 = defaultRetries1, defaultRetries2
		}
		rto := rtoBounds(t)
		return []Step{
			call("server", "listen", "ok"),
			call("client", "connect", "ok"), call("server", "accept", "ok"),
			call("client", "send", "ok").within(AtOnce()),
			// Each connection is opened after the fault: the retransmission
			// timer runs from the write (the server's recv is begun just
			// before it), and what a loaded machine adds before is not
			// the kernel's.
			call("client", "recv", "ETIMEDOUT").within(afterWrite(flightSpan(r2, rto).Widen())),
			// With tcp_mtu_probing=1: the textbook knows no such detection;
			// the data stalls, as on the first connection.
			call("client", "connect", "ok"), call("server", "accept", "ok"),
			call("client", "send", "ok").within(AtOnce()),
			// The data reaches the server when the client detects the black
			// hole, a span counted from the client's write; the server's
			// recv, begun before the write, may on a slow machine begin
			// only after the data has arrived and return at once.
			call("server", "recv", "").onLinux("ok").within(afterPeerWrite(flightSpan(r1, rto).Widen())),
			// The ICMP let through.
			call("client", "connect", "ok"), call("server", "accept", "ok"),
			call("client", "send", "ok").within(AtOnce()),
			call("server", "recv", "ok").within(AtOnce()),
		}
	},
	Why: "Linux does what the RFCs say, with its own mechanisms, and one the textbook lacks. The ICMP fragmentation-needed (ICMPv6 packet too big) reaches tcp_v4_err " +
		"(tcp_v6_err), which records the new path MTU and calls tcp_v4_mtu_reduced (tcp_v6_mtu_reduced): tcp_sync_mss lowers the MSS and tcp_simple_retransmit resends " +
		"at once, without waiting for a timeout. Without the ICMP, nothing tells the client: it retransmits the full-sized segments, backing off, until tcp_retries2's time " +
		"(retransmits_timed_out). Black hole detection is RFC 4821's idea done Linux's way: with net.ipv4.tcp_mtu_probing=1, tcp_write_timeout calls tcp_mtu_probing " +
		"once tcp_retries1's time has passed since the first retransmission; it enables MTU probing with the search's lower bound at net.ipv4.tcp_base_mss (1024) " +
		"and tcp_sync_mss cuts the segment size to it, so the next retransmission fits (a further timeout would halve it, down to tcp_mtu_probe_floor). " +
		"The sysctl is net.ipv4's but TCP over IPv6 uses it too. The textbook has no such detection: the second connection would stall like the first.",
	Settings: func(cfg Config) Settings {
		r1, r2 := pmtuRetries(cfg)
		return Settings{
			Knobs: []Knob{
				{Node: topology.Client, Key: "net.ipv4.tcp_retries1", Value: strconv.Itoa(r1)},
				{Node: topology.Client, Key: "net.ipv4.tcp_retries2", Value: strconv.Itoa(r2)},
				{Node: topology.Client, Key: "net.ipv4.tcp_mtu_probing", Value: "0"},
				{Node: topology.Client, Key: "net.ipv4.tcp_base_mss", Value: strconv.Itoa(baseMSS)},
			},
			predict: func(rto [2]time.Duration) Timing {
				g, d := flightSpan(r2, rto), flightSpan(r1, rto)
				return Timing{
					Predicted: g.Min, Floor: g.Min + d.Min, RTO: rto[1],
					Basis: fmt.Sprintf("the black hole ends the first connection when tcp_retries2=%d's time (%s after the first retransmission) has passed: %s to %s; "+
						"with tcp_mtu_probing=1 (set after the first connection) the black hole is detected at the first timeout past tcp_retries1=%d's time (%s): %s to %s "+
						"after the write, for an RTO of %s to %s (the flight's small last segment passes, the server's SACK for it has the full-sized ones retransmitted at once, "+
						"which starts the deadline; the retransmission timer fires one RTO later, then doubles)",
						r2, fmtDur(retries2Model(r2)), fmtDur(g.Min), fmtDur(g.Max), r1, fmtDur(retries2Model(r1)), fmtDur(d.Min), fmtDur(d.Max), fmtDur(rto[0]), fmtDur(rto[1])),
				}
			},
		}
	},
	Steps: func(r *Run) error {
		if err := r.onePacketPerSegment(); err != nil {
			return err
		}
		mo := impair.Options{}
		if _, err := impair.MTU.Apply(r.Lab, mo); err != nil {
			return err
		}
		r.Note(topology.Router, impair.MTU.Describe(mo), time.Now())
		if err := r.listen(); err != nil {
			return err
		}
		transfer := func(i int, serverReads bool) error {
			if err := r.establishConn(conn{i, pmtuOpts}); err != nil {
				return err
			}
			if serverReads {
				if err := r.Begin(r.Server, Cmd{Op: "recv-all", Len: pmtuWrite, Sock: i}); err != nil {
					return err
				}
			}
			if _, err := r.Call(r.Client, Cmd{Op: "send", Len: pmtuWrite, Sock: i}); err != nil {
				return err
			}
			if serverReads {
				_, err := r.Finish(r.Server, "recv")
				return err
			}
			_, err := r.Call(r.Client, Cmd{Op: "recv", Sock: i})
			return err
		}
		if err := r.Inject(impair.DropTooBig, r.familyOpts()); err != nil {
			return err
		}
		if err := transfer(pmtuConnBlackhole, false); err != nil {
			return err
		}
		if err := r.Fault(topology.Client, "client sets net.ipv4.tcp_mtu_probing=1", func() error {
			return r.Lab.Client.Sysctl("net.ipv4.tcp_mtu_probing", "1")
		}); err != nil {
			return err
		}
		if err := transfer(pmtuConnProbing, true); err != nil {
			return err
		}
		if err := r.Fault(topology.Router, "router lets its ICMP through again", func() error { return impair.DropTooBig.Clear(r.Lab) }); err != nil {
			return err
		}
		return transfer(pmtuConnHealthy, true)
	},
	Packets: func(t Timing) []PacketCheck {
		a := addrsOf(t.Family)
		full, fits := maxPayload(t.Family, 1500), maxPayload(t.Family, pmtuMTU)
		data := func(i int) func(Pkt) bool { return and(fromClientConn(a, t.Port, i), withData) }
		larger := func(n int) func(Pkt) bool { return func(p Pkt) bool { return p.Len > n } }
		atMost := func(n int) func(Pkt) bool { return func(p Pkt) bool { return p.Len <= n } }
		return []PacketCheck{
			{Desc: fmt.Sprintf("black hole: the first connection's full-sized segments (%d bytes) and their retransmissions, backing off", full), Point: PointRouterClient,
				Match: and(data(pmtuConnBlackhole), func(p Pkt) bool { return p.Len == full }), Min: 3, Max: -1},
			{Desc: "black hole: any of them forwarded to the server", Point: PointRouterServer,
				Match: and(data(pmtuConnBlackhole), larger(fits)), Max: 0},
			{Desc: "black hole: ICMP about the first two connections' segments reaching the client", Point: PointRouterClient,
				Match: func(p Pkt) bool {
					return p.Proto == a.icmp && p.ICMPInner != nil && (p.ICMPInner.SrcPort == connPort(pmtuConnBlackhole) || p.ICMPInner.SrcPort == connPort(pmtuConnProbing))
				}, Max: 0},
			{Desc: fmt.Sprintf("probing: the second connection's full-sized segments (%d bytes), lost until the black hole is detected", full), Point: PointRouterClient,
				Match: and(data(pmtuConnProbing), func(p Pkt) bool { return p.Len == full }), Min: 2, Max: -1},
			{Desc: fmt.Sprintf("probing: the second connection's segments of at most tcp_base_mss (%d bytes) reaching the server after the detection", baseMSS), Point: PointRouterServer,
				Match: and(data(pmtuConnProbing), atMost(baseMSS)), Min: 3, Max: -1},
			{Desc: fmt.Sprintf("healthy: the router's ICMP %s announcing MTU %d, reaching the client, one per full-sized segment sent before the client took it in", map[int]string{4: "fragmentation needed", 6: "packet too big"}[t.Family], pmtuMTU), Point: PointRouterClient,
				Match: icmpTooBig(a, t.Family, t.Port, pmtuConnHealthy, pmtuMTU), Min: 1, Max: 3},
			{Desc: fmt.Sprintf("healthy: the third connection's data reaching the server in segments that fit (at most %d bytes)", fits), Point: PointRouterServer,
				Match: and(data(pmtuConnHealthy), atMost(fits)), Min: 4, Max: -1},
		}
	},
	Own: &Own{Listener: true, Before: func(r *Run) error {
		if err := r.Inject(impair.MTU, impair.Options{}); err != nil {
			return err
		}
		return r.Inject(impair.DropTooBig, r.familyOpts())
	}},
})
