package experiments

import (
	"fmt"
	"slices"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/impair"
	"github.com/tcplab/tcplab/topology"
)

// nat-idle-timeout verifies that a stateful router that forgets an idle
// connection drops its next segments, so the client retransmits until
// tcp_retries2's time runs out (ETIMEDOUT), and that keepalive shorter
// than the router's timeout keeps the connection alive.

// The two connections through the router: idle, and kept alive by probes
// more frequent than the router's timeout.
var natKa = keepalive{Idle: time.Second, Intvl: time.Second, Cnt: 9}

const natConnIdle, natConnKa = 0, 1

// natSetup makes the router a NAT gateway: connection tracking with a
// short established timeout, and masquerading. It is the lab's setting,
// noted in the timeline; the fault is the tracker forgetting a connection.
func (r *Run) natSetup() error {
	// Both apply to every family: the router is a NAT gateway for both.
	o := impair.Options{Timeout: ctTimeout}
	for _, f := range []struct {
		f impair.Fault
		o impair.Options
	}{{impair.Stateful, o}, {impair.Masquerade, impair.Options{}}} {
		if _, err := f.f.Apply(r.Lab, f.o); err != nil {
			return err
		}
		r.Note(f.f.Node, f.f.Describe(f.o), time.Now())
	}
	return nil
}

// waitForgotten waits until the router's tracker no longer holds the
// connection from the client's port lport (any, if 0), within limit.
func (r *Run) waitForgotten(lport uint16, limit time.Duration) (bool, error) {
	deadline := time.Now().Add(limit)
	for {
		conns, err := impair.Tracked(r.Lab, r.Cfg.Family, uint16(r.Port()))
		if err != nil {
			return false, err
		}
		if !slices.ContainsFunc(conns, func(c impair.TrackedConn) bool { return lport == 0 || c.ClientPort == lport }) {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		time.Sleep(10 * time.Millisecond) // polling the tracker's table, whose entries expire lazily
	}
}

// tracked says whether the router tracks the connection from lport.
func (r *Run) tracked(lport uint16) (bool, error) {
	conns, err := impair.Tracked(r.Lab, r.Cfg.Family, uint16(r.Port()))
	return slices.ContainsFunc(conns, func(c impair.TrackedConn) bool { return c.ClientPort == lport }), err
}

var _ = register(&Case{
	ID: "nat-idle-timeout", No: 16,
	Title:   "A stateful middlebox forgets an idle connection",
	Summary: "the router's connection tracking forgets an idle connection; the client's next segments are dropped until it gives up with ETIMEDOUT; keepalive keeps the other alive",
	Trigger: "the router filters with connection tracking (established accepted, new only by SYN, the rest dropped), masquerades the client, and forgets an established connection idle for 2 s; " +
		"two connections: one idle until the router has forgotten it, then written on; one with keepalive every second (TCP_KEEPIDLE 1 s, TCP_KEEPINTVL 1 s), written on last",
	Textbook: "RFC 5382 (NAT behaviour for TCP): an established mapping must not expire in under 2 h 4 min, yet real firewalls and load balancers forget idle connections after minutes. " +
		"A segment after the expiry matches no state and is dropped: the client retransmits until it gives up. Keepalive more frequent than the timeout keeps the mapping.",
	Linux: func(t Timing) string {
		return "As the textbook. The router's tracker (the kernel's default established timeout is 5 days, net.netfilter.nf_conntrack_tcp_timeout_established=432000; here 2 s, in the router's namespace only, in both modes) " +
			"forgets the idle connection; the client's write is dropped, and it retransmits until tcp_retries2's time: " + t.Basis +
			". Each keepalive probe and its answer renew the other connection's entry, whose write then reaches the server."
	},
	Course: func(t Timing) []Step {
		return append(establishedN(2),
			call("client", "send", "ok").within(AtOnce()),
			call("client", "recv", "ETIMEDOUT").within(afterWrite(t.Window.Widen())),
			call("client", "send", "ok"),
			call("server", "recv", "ok"),
		)
	},
	Why: "The textbook's account holds; the mechanisms are Linux's. The tracker renews an entry's timeout on every segment it sees (nf_ct_refresh_acct in nf_conntrack_tcp_packet, " +
		"with the per-namespace timeouts of nf_conntrack_proto_tcp.c) and forgets it when the timeout passes (an expired entry is skipped and evicted by lookups, dumps and the garbage collector). " +
		"The next segment is then new to the tracker; with net.netfilter.nf_conntrack_tcp_loose=1 (the default) tcp_new would even pick the connection up in the middle and track it again, " +
		"which is why the firewall's rule accepts a new connection only by a SYN: the mid-stream segment is dropped before its entry is confirmed, so nothing is tracked. " +
		"The client cannot tell a forgotten mapping from a dead host: it backs off and gives up after tcp_retries2's modelled time (retransmits_timed_out), without a RST. " +
		"A keepalive probe (tcp_keepalive_timer) is an ordinary segment to the tracker, and so is its answer: both renew the entry.",
	// The stateful fault sets net.netfilter.nf_conntrack_tcp_loose=1 in
	// the router once connection tracking is in use there.
	Settings: func(cfg Config) Settings { return dataSettings(cfg, false) },
	Steps: func(r *Run) error {
		if err := r.natSetup(); err != nil {
			return err
		}
		if err := r.establishConns(conn{natConnKa, natKa.opts()}, conn{natConnIdle, nil}); err != nil {
			return err
		}
		gone, err := r.waitForgotten(connPort(natConnIdle), 3*ctTimeout)
		if err != nil {
			return err
		}
		if !gone {
			return fmt.Errorf("the router still tracks the idle connection %s after it was established", 3*ctTimeout)
		}
		r.mark(topology.Router, fmt.Sprintf("the router's tracker forgot the idle connection (established timeout %s)", fmtDur(ctTimeout)), true)
		if ok, err := r.tracked(connPort(natConnKa)); err != nil {
			return err
		} else if ok {
			r.Note(topology.Router, "the router still tracks the connection with keepalive", time.Now())
		}
		if _, err := r.Call(r.Client, Cmd{Op: "send", Len: 100, Sock: natConnIdle}); err != nil {
			return err
		}
		if _, err := r.Call(r.Client, Cmd{Op: "recv", Sock: natConnIdle}); err != nil {
			return err
		}
		if ok, err := r.tracked(connPort(natConnIdle)); err != nil {
			return err
		} else if !ok {
			r.Note(topology.Router, "the router tracks nothing for the idle connection: its mid-stream segments were new to the tracker, and dropped", time.Now())
		}
		if _, err := r.Call(r.Client, Cmd{Op: "send", Len: 100, Sock: natConnKa}); err != nil {
			return err
		}
		_, err = r.Call(r.Server, Cmd{Op: "recv", Sock: natConnKa})
		return err
	},
	Packets: func(t Timing) []PacketCheck {
		a := addrsOf(t.Family)
		routerOut := topology.RouterServerIP.String()
		if t.Family == 6 {
			routerOut = topology.RouterServerIP6.String()
		}
		fromRouterPort := func(i int) func(Pkt) bool {
			return func(p Pkt) bool {
				return p.Proto == "tcp" && p.Src == routerOut && p.SrcPort == connPort(i) && p.Dst == a.server && p.DstPort == t.Port
			}
		}
		return []PacketCheck{
			{Desc: "the handshakes reaching the server from the router's address (masqueraded)", Point: PointRouterServer,
				Match: and(func(p Pkt) bool { return p.Proto == "tcp" && p.Src == routerOut && p.DstPort == t.Port }, flagsAre(capture.SYN)), Min: 2, Max: 2},
			{Desc: "the idle connection's data and retransmissions after the router forgot it", Point: PointRouterClient, AfterFault: true,
				Match: and(fromClientConn(a, t.Port, natConnIdle), withData), Min: 3, Max: -1, Judge: backingOff(rtoBounds(t))},
			{Desc: "any of them forwarded to the server", Point: PointRouterServer, AfterFault: true,
				Match: func(p Pkt) bool { return p.Proto == "tcp" && p.SrcPort == connPort(natConnIdle) && p.DstPort == t.Port }, Max: 0},
			{Desc: "a RST or anything else reaching the idle connection's client after the router forgot it", Point: PointRouterClient, AfterFault: true,
				Match: toClientConn(a, t.Port, natConnIdle), Max: 0},
			{Desc: "the keepalive connection's probes forwarded to the server, masqueraded", Point: PointRouterServer, AfterFault: true,
				Match: and(fromRouterPort(natConnKa), keepaliveProbe), Select: probesOnly, Min: 2, Max: -1},
			{Desc: "the keepalive connection's data forwarded to the server", Point: PointRouterServer, AfterFault: true,
				Match: and(fromRouterPort(natConnKa), withData), Min: 1, Max: 1},
		}
	},
	Own: &Own{Listener: true,
		Before: func(r *Run) error { return r.natSetup() },
		After: func(r *Run) error {
			// Once the connection is open: wait (bounded) for the router to
			// forget it, which it does if the client stays idle.
			gone, err := r.waitForgotten(0, 3*ctTimeout)
			if err == nil && gone {
				r.mark(topology.Router, "the router's tracker forgot the connection", true)
			}
			return err
		}},
})
