package experiments

import (
	"time"

	"github.com/tcplab/tcplab/impair"
)

// host-unreachable verifies that ICMP host unreachable for an established
// connection's data is a soft error, reported when the retransmissions'
// time runs out: EHOSTUNREACH.
var _ = register(&Case{
	ID: "host-unreachable", No: 8,
	Title:    "Router reports the server unreachable",
	Summary:  "the router answers the client's data with ICMP host-unreachable; the client retransmits, then fails with EHOSTUNREACH",
	Trigger:  "router rejects the client's segments with ICMP host-unreachable (nftables reject), after the connection is established",
	Textbook: "The client retransmits; each ICMP is kept as a soft error; when the retransmission timeout expires the error reported is EHOSTUNREACH instead of ETIMEDOUT.",
	Linux: func(t Timing) string {
		return "As the textbook: the ICMP is kept as a soft error (sk_err_soft) and reported when the retransmission deadline passes: " + t.Basis + "; recv fails with EHOSTUNREACH."
	},
	Course: func(t Timing) []Step {
		return append(established(),
			call("client", "send", "ok").within(AtOnce()),
			call("client", "recv", "EHOSTUNREACH").book(9*time.Minute).within(afterWrite(t.Window.Widen())),
		)
	},
	Why: "Same errno and deadline, different packets: on each ICMP host or net unreachable for the oldest unacknowledged segment, Linux undoes one " +
		"step of the exponential backoff (tcp_ld_RTO_revert, RFC 6069), so it keeps retransmitting about every 200 ms instead of backing off; the " +
		"deadline is time-based (tcp_retries2), so the error still comes when the timeout model says. Only at each 256th retransmission, where the 8-bit " +
		"retransmission counter (icsk_retransmits) wraps to 0, does an ICMP undo nothing, leaving the backoff one step higher for good (reached only " +
		"with --kernel-defaults). With IP_RECVERR set the error would be reported at once. " +
		"Over IPv6 the router sends ICMPv6 address unreachable (code 3), which tcp_v6_err keeps as a soft error (EHOSTUNREACH) but does not use to undo " +
		"the backoff (it does so only for no-route, code 0): the retransmissions back off as in host-crash, and the error comes as late.",
	// tcp_v6_err undoes the backoff only for ICMPv6 no-route.
	Settings: func(cfg Config) Settings { return dataSettings(cfg, cfg.Family != 6) },
	Steps: func(r *Run) error {
		if err := r.establish(); err != nil {
			return err
		}
		if err := r.Inject(impair.RejectHost, r.opts()); err != nil {
			return err
		}
		return r.sendThenRecv()
	},
	Packets: func(t Timing) []PacketCheck {
		a := addrsOf(t.Family)
		return []PacketCheck{
			{Desc: "ICMP host-unreachable (ICMPv6 address-unreachable) from the router for the client's data", Point: PointRouterClient, AfterFault: true, Match: icmpUnreachable(a, a.host, t.Port), Min: 2, Max: -1},
			{Desc: "the client's data and its retransmissions", Point: PointRouterClient, AfterFault: true, Match: and(tcpFromClient(a, t.Port), withData), Min: 3, Max: -1, Judge: judgeRevert(t)},
			{Desc: "client segments forwarded to the server", Point: PointRouterServer, AfterFault: true, Match: tcpFromClient(a, t.Port), Max: 0},
		}
	},
	Own: &Own{Listener: true, After: func(r *Run) error { return r.Inject(impair.RejectHost, r.opts()) }},
})
