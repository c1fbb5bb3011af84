package experiments

import (
	"time"

	"github.com/tcplab/tcplab/capture"
)

// accept-aborted verifies that a connection reset before the server
// accepts it is still returned by accept on Linux, its first read failing.
var _ = register(&Case{
	ID: "accept-aborted", No: 4,
	Title:    "Client resets before accept",
	Summary:  "the client connects then resets before the server accepts; Linux's accept still returns the connection",
	Trigger:  "client connects, then closes with SO_LINGER {on, 0} (sends RST) before the server calls accept",
	Textbook: "POSIX: accept fails with ECONNABORTED (Berkeley: the connection is silently dropped from the queue and accept blocks or fails with EWOULDBLOCK; SVR4: EPROTO).",
	Linux: func(Timing) string {
		return "accept succeeds and returns the reset connection; the first read on it fails with ECONNRESET, the next returns 0."
	},
	Course: func(Timing) []Step {
		return []Step{
			call("server", "listen", "ok"),
			call("client", "connect", "ok"),
			call("client", "close(linger=0)", "ok"),
			call("server", "accept", "ECONNABORTED").onLinux("ok").within(AtOnce()),
			linuxOnly("server", "recv", "ECONNRESET").within(AtOnce()),
			linuxOnly("server", "recv", "eof").within(AtOnce()),
		}
	},
	Why: "On Linux the handshake completes in the kernel and the new socket waits, fully established, in the listener's accept queue. The RST " +
		"(tcp_reset) closes that child socket and records ECONNRESET in it, but leaves it queued; inet_csk_accept hands out whatever is queued " +
		"without looking at its state, so accept succeeds and the error surfaces on the first read.",
	Settings: noTimer,
	Steps: func(r *Run) error {
		ev, err := r.listenConnect()
		if err != nil {
			return err
		}
		if _, err := r.Call(r.Client, syscallCmd("close-rst")); err != nil {
			return err
		}
		r.mark("client", "RST sent (close with SO_LINGER {on, 0})", true)
		// Accept only once the server's stack has processed the RST.
		if err := r.waitServerConnGone(ev.Local, 5*time.Second); err != nil {
			return err
		}
		r.mark("server", "server stack has dropped the connection; accept queue still holds it", false)
		if _, err := r.Call(r.Server, syscallCmd("accept")); err != nil {
			return err
		}
		for range 2 {
			if _, err := r.Call(r.Server, syscallCmd("recv")); err != nil {
				return err
			}
		}
		return nil
	},
	Packets: func(t Timing) []PacketCheck {
		a := addrsOf(t.Family)
		return []PacketCheck{
			{Desc: "the client's RST after the handshake", Point: PointRouterClient, Match: and(tcpFromClient(a, t.Port), hasFlag(capture.RST)), Min: 1, Max: 1},
			{Desc: "that RST forwarded to the server", Point: PointRouterServer, Match: and(tcpFromClient(a, t.Port), hasFlag(capture.RST)), Min: 1, Max: 1},
			{Desc: "a FIN or RST from the server", Point: PointRouterServer, Match: and(tcpFromServer(a, t.Port), func(p Pkt) bool { return p.Flags.Has(capture.FIN) || p.Flags.Has(capture.RST) }), Max: 0},
		}
	},
	// Own: none. The fault is the built-in client's own reset.
})
