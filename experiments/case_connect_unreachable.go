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
	Summary:  "the router answers the SYN with ICMP host- then net-unreachable; Linux fails connect at once",
	Trigger:  "router rejects the SYN with ICMP host-unreachable, then with net-unreachable (nftables reject)",
	Textbook: "A soft error: the kernel keeps the ICMP, keeps resending the SYN on the same schedule, and after the 75 s timeout connect reports EHOSTUNREACH (or ENETUNREACH) instead of ETIMEDOUT.",
	Linux: func(Timing) string {
		return "A hard error, once the socket is free to take it: connect fails with EHOSTUNREACH (host-unreachable) or ENETUNREACH (net-unreachable) " +
			"instead of retrying for minutes. When the ICMP answering the first SYN arrives while connect still holds the socket it is only stored, " +
			"and the one answering the SYN retransmitted after 1 s aborts the attempt; when it arrives after connect has gone to sleep, it aborts at once. " +
			"Which of the two happens is a race between the router's answer and connect going to sleep; the report says which this run saw."
	},
	Course: func(t Timing) []Step {
		atOnce := meaning(AtOnce(), "the ICMP answering the first SYN came after connect had released the socket: a hard error at once")
		retry := meaning(Around(t.Predicted), "the ICMP answering the first SYN came while connect held the socket and was only stored; the one answering the SYN retransmitted after 1 s aborted the attempt")
		return []Step{
			call("client", "connect", "EHOSTUNREACH").book(75*time.Second).either(retry, atOnce),
			call("client", "connect", "ENETUNREACH").book(75*time.Second).either(retry, atOnce),
		}
	},
	Why: "In tcp_v4_err (net/ipv4/tcp_ipv4.c) an ICMP unreachable for a socket in SYN_SENT ends the attempt at once with the ICMP's errno " +
		"(tcp_done_with_error), unlike BSD's tcp_notify, which keeps it as a soft error until the connection-establishment timer expires " +
		"(RFC 1122 4.2.3.9 says host and net unreachable should not abort). Only when the socket is locked by its owner is the ICMP merely " +
		"stored (sk_err_soft). In this lab the router's answer to the first SYN usually comes back within the connect call that sent it, while the " +
		"socket is still locked; the SYN retransmitted from the timer after TCP_TIMEOUT_INIT (1 s) then draws an ICMP that finds it unlocked. On a " +
		"loaded machine, and across a real network, where the ICMP comes back after connect has gone to sleep, the first ICMP already aborts.",
	Settings: func(Config) Settings {
		return Settings{Predicted: time.Second, Floor: 2 * time.Second,
			Basis: "in each of the two connects, the first SYN retransmission, TCP_TIMEOUT_INIT = 1 s after the SYN, draws the aborting ICMP"}
	},
	Steps: func(r *Run) error {
		for _, f := range []impair.Fault{impair.RejectHost, impair.RejectNet} {
			if err := f.Clear(r.Lab); err != nil {
				return err
			}
			if err := r.Inject(f, r.synOpts()); err != nil {
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
			{Desc: "the client's SYNs, one or two per connect (the first, and one retransmission after 1 s when the first ICMP was only stored)", Point: PointRouterClient, Match: and(tcpFromClient(a, t.Port), flagsAre(capture.SYN)), Min: 2, Max: 4},
			{Desc: "ICMP host-unreachable (ICMPv6 address-unreachable) from the router, one per SYN of the first connect", Point: PointRouterClient, Match: icmpUnreachable(a, a.host, t.Port), Min: 1, Max: 2},
			{Desc: "ICMP net-unreachable (ICMPv6 no-route) from the router, one per SYN of the second connect", Point: PointRouterClient, Match: icmpUnreachable(a, a.net, t.Port), Min: 1, Max: 2},
			{Desc: "SYNs forwarded to the server", Point: PointRouterServer, Match: tcpFromClient(a, t.Port), Max: 0},
		}
	},
	Own: &Own{Listener: true, Before: func(r *Run) error { return r.Inject(impair.RejectHost, r.synOpts()) }},
})
