package experiments

import (
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/impair"
)

// connect-unreachable verifies that an ICMP destination unreachable
// answering the SYN is a hard error on Linux, for host- and net-unreachable.
var _ = register(&Case{
	ID: "connect-unreachable", No: 3,
	Title:    "ICMP destination unreachable answers SYN",
	Summary:  "the router answers the retransmitted SYN with ICMP host- then net-unreachable; Linux aborts connect there, not after 75 s",
	Trigger:  "router drops each connect's first SYN and rejects its retransmission with ICMP host-unreachable, then for a second connect with net-unreachable (nftables)",
	Textbook: "A soft error: the kernel keeps the ICMP, keeps resending the SYN on the same schedule, and after the 75 s timeout connect reports EHOSTUNREACH (or ENETUNREACH) instead of ETIMEDOUT.",
	Linux: func(Timing) string {
		return "A hard error: the ICMP answering the SYN retransmitted after 1 s aborts the attempt, and connect fails with EHOSTUNREACH " +
			"(host-unreachable) or ENETUNREACH (net-unreachable) after about 1 s instead of retrying for minutes."
	},
	Course: func(t Timing) []Step {
		return []Step{
			call("client", "connect", "EHOSTUNREACH").book(75 * time.Second).within(afterCall(Around(t.Predicted))),
			call("client", "connect", "ENETUNREACH").book(75 * time.Second).within(afterCall(Around(t.Predicted))),
		}
	},
	Why: "In tcp_v4_err (net/ipv4/tcp_ipv4.c; tcp_v6_err alike) an ICMP unreachable for a socket in SYN_SENT ends the attempt at once with the ICMP's errno " +
		"(tcp_done_with_error), where RFC 1122 4.2.3.9 says host and net unreachable MUST NOT abort a connection and BSD's tcp_notify keeps them as soft " +
		"errors until the connection-establishment timer expires. (A change that made them soft for SYN_SENT went into 6.7's development and was reverted " +
		"before 6.8.) Only when the process holds the socket lock at that instant is the ICMP merely stored (sk_err_soft). In a namespace lab the router's " +
		"answer to the very first SYN is usually processed inside the connect call that sent it (the softirq runs when connect's transmit path re-enables " +
		"bottom halves), so it would be only stored, and whether it is depends on which CPU processes the reply; tcplab therefore drops each attempt's first " +
		"SYN and rejects the retransmission, which the timer sends with the socket free: the ICMP always aborts, at the first retransmission after " +
		"TCP_TIMEOUT_INIT (1 s). Across a real network, where the ICMP comes back after connect has gone to sleep, the first ICMP aborts at once.",
	Settings: func(Config) Settings {
		return Settings{Predicted: time.Second, Floor: 2 * time.Second,
			Basis: "in each of the two connects, the first SYN retransmission, TCP_TIMEOUT_INIT = 1 s after the SYN, draws the aborting ICMP"}
	},
	Steps: func(r *Run) error {
		for _, f := range []impair.Fault{impair.RejectHost, impair.RejectNet} {
			if err := f.Clear(r.Lab); err != nil {
				return err
			}
			o := r.synOpts()
			o.FirstSYNDropped = true
			if err := r.Inject(f, o); err != nil {
				return err
			}
			if _, err := r.connect(); err != nil {
				return err
			}
		}
		return nil
	},
	Packets: func(t Timing) []PacketCheck {
		a := addrsOf(t.Family)
		return []PacketCheck{
			{Desc: "the client's SYNs, two per connect (the first, dropped, and one retransmission after 1 s)", Point: PointRouterClient, Match: and(tcpFromClient(a, t.Port), flagsAre(capture.SYN)), Min: 4, Max: 4, Judge: schedule([]time.Duration{0, time.Second})},
			{Desc: "ICMP host-unreachable (ICMPv6 address-unreachable) from the router, for the first connect's retransmitted SYN", Point: PointRouterClient, Match: icmpUnreachable(a, a.host, t.Port), Min: 1, Max: 1},
			{Desc: "ICMP net-unreachable (ICMPv6 no-route) from the router, for the second connect's retransmitted SYN", Point: PointRouterClient, Match: icmpUnreachable(a, a.net, t.Port), Min: 1, Max: 1},
			{Desc: "SYNs forwarded to the server", Point: PointRouterServer, Match: tcpFromClient(a, t.Port), Max: 0},
		}
	},
	Own: &Own{Listener: true, Before: func(r *Run) error { return r.Inject(impair.RejectHost, r.synOpts()) }},
})
