package experiments

import (
	"time"

	"github.com/tcplab/tcplab/impair"
)

// host-crash verifies that a client whose peer host vanished silently
// retransmits, backing off, until tcp_retries2's time runs out: ETIMEDOUT.
var _ = register(&Case{
	ID: "host-crash", No: 7,
	Title:    "Server host crashes",
	Summary:  "the server's link dies silently; the client retransmits until it gives up with ETIMEDOUT",
	Trigger:  "server link brought down: no FIN, no RST, no ICMP (the router's neighbour entry for the server is permanent, so it never reports the loss)",
	Textbook: "The client retransmits its data, backing off, for about 9 minutes (BSD: 12 retransmissions), then gives up; read fails with ETIMEDOUT.",
	Linux: func(t Timing) string {
		return "The client retransmits with exponential backoff from about 200 ms and gives up when the time modelled from net.ipv4.tcp_retries2 has passed; recv fails with ETIMEDOUT: " + t.Basis + "."
	},
	Course: func(t Timing) []Step {
		return append(established(),
			call("client", "send", "ok").within(AtOnce()),
			call("client", "recv", "ETIMEDOUT").book(9*time.Minute).within(afterWrite(t.Window.Widen())),
		)
	},
	Why: "Linux bounds retransmission by time, not count: net.ipv4.tcp_retries2 (default 15) is turned into the time of 16 timeouts doubling from 200 ms " +
		"and capped at 120 s (the original transmission's and 15 retransmissions'), 924.6 s (tcp_model_timeout), counted from the first retransmission and " +
		"tested only when the retransmission timer fires (retransmits_timed_out): with an RTO of 201 to 230 ms the error comes 15.4 to 15.9 min after the data, " +
		"where BSD gives up after 12 retransmissions, about 9 min.",
	Settings: func(cfg Config) Settings { return dataSettings(cfg, false) },
	Steps: func(r *Run) error {
		if err := r.establish(); err != nil {
			return err
		}
		if err := r.Inject(impair.Crash, r.opts()); err != nil {
			return err
		}
		return r.sendThenRecv()
	},
	Packets: func(t Timing) []PacketCheck {
		a := addrsOf(t.Family)
		return []PacketCheck{
			{Desc: "the client's data and its retransmissions", Point: PointRouterClient, AfterFault: true, Match: and(tcpFromClient(a, t.Port), withData), Min: 3, Max: -1, Judge: backingOff(rtoBounds(t))},
			{Desc: "anything reaching the client after the crash (no FIN, no RST, no ICMP)", Point: PointRouterClient, AfterFault: true, Match: toClient(a), Max: 0},
		}
	},
	Own: &Own{Listener: true, After: func(r *Run) error { return r.Inject(impair.Crash, r.opts()) }},
})
