package experiments

import (
	"fmt"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/impair"
	"github.com/tcplab/tcplab/topology"
	"github.com/vishvananda/netlink"
)

// keepalive-crash verifies that keepalive, shortened per socket, notices a
// server host that died while the connection was idle (ETIMEDOUT after
// idle + cnt x intvl), that without keepalive nothing notices, and that a
// rebooted host answers a probe with a RST (ECONNRESET).

// The three connections: keepalive shortened; no keepalive; keepalive
// turned on once the server host has rebooted. Turning it on then
// (tcp_set_keepalive arms the timer for TCP_KEEPIDLE from that moment)
// makes the first probe meet the new stack however long the reboot took:
// with keepalive on from the start, a slow reboot would meet the probes
// with no host at all (the router's net unreachable, a soft error) and the
// connection would time out instead.
var (
	kaShort   = keepalive{Idle: time.Second, Intvl: time.Second, Cnt: 2}
	kaReboot  = keepalive{Idle: time.Second, Intvl: time.Second, Cnt: 3}
	kaNoneFor = time.Second // how long the connection without keepalive is watched
)

const (
	kaConnShort, kaConnNone, kaConnReboot = 0, 1, 2
)

var _ = register(&Case{
	ID: "keepalive-crash", No: 11,
	Title:   "Server host crashes while the connection is idle",
	Summary: "the server host dies while the client waits in recv; keepalive notices (ETIMEDOUT), nothing else does; a rebooted host answers a probe with a RST",
	Trigger: "three idle connections, the client waiting in recv: keepalive shortened per socket (TCP_KEEPIDLE 1 s, TCP_KEEPINTVL 1 s, TCP_KEEPCNT 2), no keepalive, and a third " +
		"with the same times whose keepalive is off; the server host crashes silently (link down, never reported); once the first two are observed it reboots " +
		"(all TCP state lost), and the client turns keepalive on for the third",
	Textbook: "UNP 7.5: with SO_KEEPALIVE, after 2 hours of idleness the kernel probes; with no answer, 9 probes 75 s apart, then the pending error is ETIMEDOUT (2 h 11 min 15 s in all); " +
		"a rebooted peer answers a probe with a RST (ECONNRESET). Without keepalive an idle connection to a dead host is never noticed.",
	Linux: func(t Timing) string {
		return "As the textbook, at the socket's own times: Linux's per-socket TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT replace the system-wide " +
			"net.ipv4.tcp_keepalive_time, _intvl and _probes (whose defaults, 7200 s, 75 s and 9, are the textbook's 2 h 11 min 15 s, and stay in force here: " +
			"only the sockets are shortened, in both modes, since no run waits two hours). " + t.Basis + "."
	},
	Course: func(t Timing) []Step {
		return append(establishedN(3),
			call("server", "recv", "killed").sig("SIGKILL"),
			call("client", "recv", "ETIMEDOUT").book(defaultKeepalive.giveUp()).within(Around(kaShort.giveUp()-t.IdleBeforeFault)),
			call("client", "recv", stillWaiting).within(&Window{Min: kaShort.giveUp() - t.IdleBeforeFault, Max: Around(kaShort.giveUp() + kaNoneFor).Max}),
			call("client", "setsockopt", "ok"),
			call("client", "recv", "ECONNRESET").within(afterWrite(Around(kaReboot.Idle))),
		)
	},
	Why: "The mechanism is the textbook's; only the times differ, because the sockets set them. tcp_keepalive_timer (net/ipv4/tcp_timer.c) " +
		"fires once the connection has been idle for TCP_KEEPIDLE (keepalive_time_elapsed counts from the last segment received), sends a probe " +
		"(tcp_write_wakeup: a bare ACK one byte below the next sequence number, which the peer must answer), fires again every TCP_KEEPINTVL, and " +
		"when TCP_KEEPCNT probes are unanswered sends a RST and reports ETIMEDOUT (tcp_send_active_reset, tcp_write_err). " +
		"The rebooted host has no socket for the probe and answers with a RST (tcp_v4_send_reset, tcp_v6_send_reset): ECONNRESET.",
	Settings: func(cfg Config) Settings {
		return Settings{
			Knobs:     keepaliveKnobs(),
			Predicted: kaShort.giveUp(),
			Floor:     kaShort.giveUp() + kaNoneFor + kaReboot.Idle,
			Basis: fmt.Sprintf("connection 1 (%s) probes at %s and %s after the crash and gives up at %s; connection 2 (no keepalive) is still waiting %s later; "+
				"connection 3 (%s, keepalive turned on once the host has rebooted) sends its first probe %s after that, to the rebooted host",
				kaShort, fmtDur(kaShort.probes()[0]), fmtDur(kaShort.probes()[1]), fmtDur(kaShort.giveUp()), fmtDur(kaNoneFor), kaReboot, fmtDur(kaReboot.Idle)),
		}
	},
	Steps: func(r *Run) error {
		// The connection timed from the crash is opened last, right before it.
		if err := r.establishConns(conn{kaConnReboot, kaReboot.timers()}, conn{kaConnNone, nil}, conn{kaConnShort, kaShort.opts()}); err != nil {
			return err
		}
		if err := r.Begin(r.Server, Cmd{Op: "recv", Sock: kaConnShort}); err != nil {
			return err
		}
		if err := r.Inject(impair.Crash, r.opts()); err != nil {
			return err
		}
		if err := r.measureIdle(kaConnShort); err != nil { // its keepalive counts from its last segment
			return err
		}
		if _, err := r.Call(r.Client, Cmd{Op: "recv", Sock: kaConnShort}); err != nil {
			return err
		}
		if _, err := r.Call(r.Client, Cmd{Op: "recv-wait", Sock: kaConnNone, TimeoutMS: int(kaNoneFor / time.Millisecond)}); err != nil {
			return err
		}
		if err := r.Inject(impair.Reboot, r.opts()); err != nil {
			return err
		}
		if err := r.Killed(r.Server, "recv"); err != nil {
			return err
		}
		if _, err := r.Call(r.Client, Cmd{Op: "setsockopt", Sock: kaConnReboot, Opts: []Opt{{"SO_KEEPALIVE", 1}}}); err != nil {
			return err
		}
		_, err := r.Call(r.Client, Cmd{Op: "recv", Sock: kaConnReboot})
		return err
	},
	Packets: func(t Timing) []PacketCheck {
		a := addrsOf(t.Family)
		return []PacketCheck{
			{Desc: "connection 1's keepalive probes, TCP_KEEPIDLE after the last segment, then TCP_KEEPINTVL apart", Point: PointRouterClient, AfterFault: true,
				Match: and(fromClientConn(a, t.Port, kaConnShort), keepaliveProbe), Select: probesOnly, Min: kaShort.Cnt, Max: kaShort.Cnt, Judge: probesAt(earlier(kaShort.probes(), t.IdleBeforeFault))},
			{Desc: "connection 1's RST when keepalive gives up", Point: PointRouterClient, AfterFault: true,
				Match: and(fromClientConn(a, t.Port, kaConnShort), hasFlag(capture.RST)), Min: 1, Max: 1},
			{Desc: "anything on connection 2 (no keepalive) after the crash", Point: PointRouterClient, AfterFault: true,
				Match: fromClientConn(a, t.Port, kaConnNone), Max: 0},
			{Desc: "connection 3's keepalive probe, turned on after the reboot: one, answered", Point: PointRouterClient, AfterFault: true,
				Match: and(fromClientConn(a, t.Port, kaConnReboot), keepaliveProbe), Select: probesOnly, Min: 1, Max: 1},
			{Desc: "the rebooted host's RST answering a probe of connection 3", Point: PointRouterClient, AfterFault: true,
				Match: and(toClientConn(a, t.Port, kaConnReboot), hasFlag(capture.RST)), Min: 1, Max: 1},
			{Desc: "anything else reaching the client (a crash sends nothing, nor does the router)", Point: PointRouterClient, AfterFault: true,
				Match: and(toClient(a), func(p Pkt) bool { return !p.Flags.Has(capture.RST) }), Max: 0},
		}
	},
	Own: &Own{Listener: true, After: func(r *Run) error {
		// The crash must find the connection idle: a request the client
		// sends right after connecting must have arrived (and been
		// acknowledged) first, or the client would be retransmitting it
		// rather than probing.
		if err := r.waitServerReceived(time.Second); err != nil {
			return err
		}
		return r.Inject(impair.Crash, r.opts())
	}},
})

// waitServerReceived waits, at most limit, until a connection of the
// server holds bytes from the client not yet read: for a server that
// reads what it is sent, it just waits limit.
func (r *Run) waitServerReceived(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		found, err := hasSocket(r.Lab.Server, r.Cfg.Family, netlink.TCP_ESTABLISHED, func(s topology.Socket) bool {
			return int(s.Local.Port()) == r.Port() && s.RQueue > 0
		})
		if err != nil || found {
			return err
		}
		time.Sleep(time.Millisecond) // polling the kernel's socket table
	}
	return nil
}
