package experiments

import (
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/impair"
)

// connect-timeout verifies that a SYN nobody answers is retransmitted on
// Linux's schedule and that connect then fails with ETIMEDOUT.
var _ = register(&Case{
	ID: "connect-timeout", No: 1,
	Title:    "No answer to SYN",
	Summary:  "the router silently drops the SYN; connect retries, then fails with ETIMEDOUT",
	Trigger:  "router drops the client's SYNs (nftables, no answer)",
	Textbook: "The kernel resends the SYN (BSD: after 6 s, then 24 s) and gives up after 75 s in total; connect fails with ETIMEDOUT.",
	Linux: func(t Timing) string {
		return "The SYN is retransmitted on Linux's schedule and connect fails with ETIMEDOUT when the attempt's time or retransmissions run out: " + t.Basis + "."
	},
	Course: func(t Timing) []Step {
		return []Step{call("client", "connect", "ETIMEDOUT").book(75 * time.Second).within(afterCall(Around(t.Predicted)))}
	},
	Why: "Linux times the SYN from 1 s (TCP_TIMEOUT_INIT, RFC 6298) and bounds the attempt by net.ipv4.tcp_syn_retries (default 6) twice over " +
		"(tcp_write_timeout): as a time, that of the first SYN's timeout and the six retransmissions' timeouts doubling from 1 s, seven timeouts, " +
		"1+2+...+64 = 127 s (tcp_model_timeout), and as a count of retransmissions; BSD uses a 75 s connection-establishment timer (tcp_keepinit) " +
		"instead. Before 6.5 the SYNs go out at 0, 1, 3, 7, 15, 31 and 63 s and connect gives up at 127 s. Linux 6.5 added net.ipv4.tcp_syn_linear_timeouts " +
		"(default 4; tcplab sets it explicitly where the kernel has it), which keeps the first four retransmissions 1 s apart before the doubling starts and " +
		"raises the count to tcp_syn_retries + 4: with the defaults the SYNs go out at 0, 1, 2, 3, 4, 5, 7, 11, 19, 35 and 67 s and connect gives up at 131 s.",
	Settings: synSettings,
	Steps: func(r *Run) error {
		if err := r.Inject(impair.Drop, r.synOpts()); err != nil {
			return err
		}
		_, err := r.connect()
		return err
	},
	Packets: func(t Timing) []PacketCheck {
		a := addrsOf(t.Family)
		syns, _ := synSchedule(knob(t.Settings, "net.ipv4.tcp_syn_retries"), max(knob(t.Settings, "net.ipv4.tcp_syn_linear_timeouts"), 0))
		return []PacketCheck{
			{Desc: "the client's SYN and its retransmissions", Point: PointRouterClient, Match: and(tcpFromClient(a, t.Port), flagsAre(capture.SYN)), Min: len(syns), Max: len(syns), Judge: schedule(syns)},
			{Desc: "SYNs forwarded to the server", Point: PointRouterServer, Match: and(tcpFromClient(a, t.Port), flagsAre(capture.SYN)), Max: 0},
			{Desc: "anything sent back to the client", Point: PointRouterClient, Match: toClient(a), Max: 0},
		}
	},
	Own: &Own{Listener: true, Before: func(r *Run) error { return r.Inject(impair.Drop, r.synOpts()) }},
})
