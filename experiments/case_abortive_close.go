package experiments

import (
	"fmt"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/topology"
	"github.com/vishvananda/netlink"
)

// abortive-close verifies that a close with SO_LINGER {on, 0} sends a RST
// instead of a FIN, that the peer waiting in recv gets ECONNRESET, and that
// the closing side keeps no TIME_WAIT, where an ordinary close does.
var _ = register(&Case{
	ID: "abortive-close", No: 13,
	Title:    "Server closes with SO_LINGER {on, 0}",
	Summary:  "the server closes with SO_LINGER {on, 0}: a RST instead of a FIN, ECONNRESET for the client, no TIME_WAIT",
	Trigger:  "the server sets SO_LINGER {on, 0} and closes while the client waits in recv; then, for contrast, an ordinary close",
	Textbook: "UNP 7.5: with linger on and a linger time of 0, close discards the send buffer and sends a RST instead of the FIN; the peer's read fails with ECONNRESET, and the closing side skips TIME_WAIT.",
	Linux: func(Timing) string {
		return "As the textbook: close sends a RST at once (tcp_disconnect), the client's recv fails with ECONNRESET and the next returns 0, and the server keeps no TIME_WAIT " +
			"(counted as TcpExt:TCPAbortOnData). The ordinary close that follows sends a FIN, the client's recv returns 0, and once the client closes too the server's end stays in TIME_WAIT."
	},
	Course: func(Timing) []Step {
		return append(established(),
			call("server", "setsockopt", "ok"),
			call("server", "close", "ok"),
			call("client", "recv", "ECONNRESET").within(AtOnce()),
			linuxOnly("client", "recv", "eof").within(AtOnce()),
			// The contrast: an ordinary close.
			call("client", "connect", "ok"),
			call("server", "accept", "ok"),
			call("server", "close", "ok"),
			call("client", "recv", "eof").within(AtOnce()),
			call("client", "close", "ok"),
		)
	},
	Why: "Linux adds only that the reset socket reads as closed afterwards: tcp_reset records ECONNRESET and shuts the socket down (tcp_done), so the " +
		"first recv reports the error (sock_error clears it) and the next returns 0.",
	Settings: keepTimeWait,
	Steps: func(r *Run) error {
		if err := r.establish(); err != nil {
			return err
		}
		port := fmt.Sprint(r.Port())
		done, err := r.watchCounters(topology.Server, "the close with SO_LINGER {on, 0}", counterWant{"TcpExt:TCPAbortOnData", 1, 1})
		if err != nil {
			return err
		}
		if err := r.Begin(r.Client, syscallCmd("recv")); err != nil {
			return err
		}
		if _, err := r.Call(r.Server, Cmd{Op: "setsockopt", Opts: []Opt{{"SO_LINGER", 0}}}); err != nil {
			return err
		}
		r.mark("server", "close with SO_LINGER {on, 0}", true)
		if _, err := r.Call(r.Server, syscallCmd("close")); err != nil {
			return err
		}
		if _, err := r.Finish(r.Client, "recv"); err != nil {
			return err
		}
		if _, err := r.Call(r.Client, syscallCmd("recv")); err != nil {
			return err
		}
		if err := done(); err != nil {
			return err
		}
		tw, err := r.socketsIn(topology.Server, netlink.TCP_TIME_WAIT, r.Port())
		if err != nil {
			return err
		}
		r.countChange(topology.Server, counterWant{"sockets in TIME_WAIT on port " + port, 0, 0}, "the abortive close", 0, int64(tw))

		// The contrast: the same, closed normally.
		if _, err := r.Call(r.Client, Cmd{Op: "connect", Addr: r.ServerAddr(), Port: r.Port(), Sock: 1}); err != nil {
			return err
		}
		if _, err := r.Call(r.Server, Cmd{Op: "accept", Sock: 1}); err != nil {
			return err
		}
		if err := r.Begin(r.Client, Cmd{Op: "recv", Sock: 1}); err != nil {
			return err
		}
		r.mark("server", "ordinary close", true)
		if _, err := r.Call(r.Server, Cmd{Op: "close", Sock: 1}); err != nil {
			return err
		}
		if _, err := r.Finish(r.Client, "recv"); err != nil {
			return err
		}
		if _, err := r.Call(r.Client, Cmd{Op: "close", Sock: 1}); err != nil {
			return err
		}
		tw2, err := r.waitSockets(topology.Server, netlink.TCP_TIME_WAIT, r.Port(), tw+1)
		if err != nil {
			return err
		}
		r.countChange(topology.Server, counterWant{"sockets in TIME_WAIT on port " + port, 1, 1}, "the ordinary close", int64(tw), int64(tw2))
		return nil
	},
	Packets: func(t Timing) []PacketCheck {
		a := addrsOf(t.Family)
		return []PacketCheck{
			{Desc: "the server's RST (the abortive close)", Point: PointRouterServer, Match: and(tcpFromServer(a, t.Port), hasFlag(capture.RST)), Min: 1, Max: 1},
			{Desc: "that RST forwarded to the client", Point: PointRouterClient, Match: and(tcpFromServer(a, t.Port), hasFlag(capture.RST)), Min: 1, Max: 1},
			{Desc: "the server's FIN: one, from the ordinary close only (its copies count once)", Point: PointRouterServer, Match: and(tcpFromServer(a, t.Port), hasFlag(capture.FIN)), Distinct: bySeq, Min: 1, Max: 1},
			{Desc: "the FIN comes after the RST, on the second connection", Point: PointRouterServer, Match: and(tcpFromServer(a, t.Port), seenBefore(and(tcpFromServer(a, t.Port), hasFlag(capture.RST)), hasFlag(capture.FIN))), Distinct: bySeq, Min: 1, Max: 1},
			{Desc: "anything from the client on the reset connection after the RST", Point: PointRouterClient, Match: afterOnConn(and(tcpFromServer(a, t.Port), hasFlag(capture.RST)), tcpFromClient(a, t.Port)), Max: 0},
		}
	},
	// Own: the user's server closes as it does; the built-in server,
	// against the user's client, reads the request and closes as above.
	Own: &Own{Listener: true, Before: func(r *Run) error {
		return r.serverPlays(syscallCmd("recv"), Cmd{Op: "setsockopt", Opts: []Opt{{"SO_LINGER", 0}}}, syscallCmd("close"))
	}},
})
