package experiments

import (
	"fmt"
	"strconv"
	"time"

	"github.com/tcplab/tcplab/topology"
)

// The packets each case must show, and must not, at the router's two
// interfaces. They are checked on the captures, beside the calls.

// addrs are the lab's addresses and ICMP flavour in a run's family.
type addrs struct {
	client, server, router string
	icmp                   string // decoded protocol name
	unreach                uint8  // destination-unreachable type
	host, net              uint8  // the codes for host and net unreachable
}

func addrsOf(s Settings) addrs {
	if s.Family == 6 {
		return addrs{topology.ClientIP6.String(), topology.ServerIP6.String(), topology.RouterClientIP6.String(), "icmpv6", 1, 3, 0}
	}
	return addrs{topology.ClientIP.String(), topology.ServerIP.String(), topology.RouterClientIP.String(), "icmp", 3, 1, 0}
}

func tcpFromClient(a addrs, port uint16) func(Pkt) bool {
	return func(p Pkt) bool {
		return p.Proto == "tcp" && p.Src == a.client && p.Dst == a.server && p.DstPort == port
	}
}

func tcpFromServer(a addrs, port uint16) func(Pkt) bool {
	return func(p Pkt) bool {
		return p.Proto == "tcp" && p.Src == a.server && p.SrcPort == port && p.Dst == a.client
	}
}

func and(fs ...func(Pkt) bool) func(Pkt) bool {
	return func(p Pkt) bool {
		for _, f := range fs {
			if !f(p) {
				return false
			}
		}
		return true
	}
}

func flags(f string) func(Pkt) bool { return func(p Pkt) bool { return p.Flags == f } }

func hasFlag(f string) func(Pkt) bool {
	return func(p Pkt) bool {
		for _, x := range splitFlags(p.Flags) {
			if x == f {
				return true
			}
		}
		return false
	}
}

func splitFlags(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

func withData(p Pkt) bool { return p.Len > 0 }

func toClient(a addrs) func(Pkt) bool { return func(p Pkt) bool { return p.Dst == a.client } }

// icmpUnreachable matches ICMP destination unreachable with the code, sent
// by the router to the client about a segment for the server's port.
func icmpUnreachable(a addrs, code uint8, port uint16) func(Pkt) bool {
	return func(p Pkt) bool {
		return p.Proto == a.icmp && p.Src == a.router && p.Dst == a.client && p.ICMPType == a.unreach && p.ICMPCode == code &&
			p.ICMPInner != nil && p.ICMPInner.Dst == a.server && p.ICMPInner.DstPort == port
	}
}

// knob reads an integer knob of the settings.
func knob(s Settings, key string) int {
	for _, k := range s.Knobs {
		if k.Key == key {
			n, _ := strconv.Atoi(k.Value)
			return n
		}
	}
	return 0
}

// schedule checks the packets' gaps against the predicted send times, each
// gap within 10% + 50 ms early and 15% + 200 ms late.
func schedule(at []time.Duration) func([]time.Time, time.Time) (bool, string) {
	return func(ts []time.Time, _ time.Time) (bool, string) {
		for i := 1; i < len(ts) && i < len(at); i++ {
			g, want := ts[i].Sub(ts[i-1]), at[i]-at[i-1]
			if g < want-want/10-50*time.Millisecond || g > want+want*15/100+200*time.Millisecond {
				return false, fmt.Sprintf("%s; gap %d is %s, the timers predict %s", gaps(ts), i, fmtDur(g), fmtDur(want))
			}
		}
		return true, gaps(ts) + ", as the timers predict"
	}
}

// backingOff checks that after the first retransmission (a tail loss
// probe) the gaps double: exponential backoff.
func backingOff(ts []time.Time, _ time.Time) (bool, string) {
	for i := 3; i < len(ts); i++ {
		if ts[i].Sub(ts[i-1]) < ts[i-1].Sub(ts[i-2])*3/2 {
			return false, gaps(ts) + "; the gaps do not double"
		}
	}
	return true, gaps(ts) + ": a tail loss probe, then exponential backoff"
}

// notBackingOff checks that no gap exceeds twice the largest RTO a lab
// connection gets: each ICMP undid the backoff.
func notBackingOff(rto time.Duration) func([]time.Time, time.Time) (bool, string) {
	return func(ts []time.Time, _ time.Time) (bool, string) {
		for i := 1; i < len(ts); i++ {
			if g := ts[i].Sub(ts[i-1]); g > 2*rto {
				return false, gaps(ts) + "; a gap backed off to " + fmtDur(g)
			}
		}
		return true, gaps(ts) + ": no backoff, each ICMP undid it"
	}
}

// afterFault reports how long after the fault the first packet came.
func afterFault(ts []time.Time, fault time.Time) (bool, string) {
	if len(ts) == 0 || fault.IsZero() {
		return true, ""
	}
	return true, fmt.Sprintf("first %s after the fault", fmtDur(ts[0].Sub(fault)))
}

func connectTimeoutPackets(s Settings, port uint16) []PacketCheck {
	a := addrsOf(s)
	syns, _ := synSchedule(knob(s, "net.ipv4.tcp_syn_retries"), max(knob(s, "net.ipv4.tcp_syn_linear_timeouts"), 0))
	return []PacketCheck{
		{Desc: "the client's SYN and its retransmissions", Point: PointRouterClient, Match: and(tcpFromClient(a, port), flags("SYN")), Min: len(syns), Max: len(syns), Judge: schedule(syns)},
		{Desc: "SYNs forwarded to the server", Point: PointRouterServer, Match: and(tcpFromClient(a, port), flags("SYN")), Max: 0},
		{Desc: "anything sent back to the client", Point: PointRouterClient, Match: toClient(a), Max: 0},
	}
}

func connectRefusedPackets(s Settings, port uint16) []PacketCheck {
	a := addrsOf(s)
	return []PacketCheck{
		{Desc: "the server's RST,ACK answering the SYN", Point: PointRouterServer, Match: and(tcpFromServer(a, port), flags("RST,ACK")), Min: 1, Max: 1},
		{Desc: "that RST forwarded to the client", Point: PointRouterClient, Match: and(tcpFromServer(a, port), flags("RST,ACK")), Min: 1, Max: 1},
	}
}

func connectUnreachablePackets(s Settings, port uint16) []PacketCheck {
	a := addrsOf(s)
	return []PacketCheck{
		{Desc: "the client's SYNs, two per connect (the first, and one retransmission after 1 s)", Point: PointRouterClient, Match: and(tcpFromClient(a, port), flags("SYN")), Min: 4, Max: 4},
		{Desc: "ICMP host-unreachable (ICMPv6 address-unreachable) from the router, one per SYN of the first connect", Point: PointRouterClient, Match: icmpUnreachable(a, a.host, port), Min: 2, Max: 2},
		{Desc: "ICMP net-unreachable (ICMPv6 no-route) from the router, one per SYN of the second connect", Point: PointRouterClient, Match: icmpUnreachable(a, a.net, port), Min: 2, Max: 2},
		{Desc: "SYNs forwarded to the server", Point: PointRouterServer, Match: tcpFromClient(a, port), Max: 0},
	}
}

func acceptAbortedPackets(s Settings, port uint16) []PacketCheck {
	a := addrsOf(s)
	return []PacketCheck{
		{Desc: "the client's RST after the handshake", Point: PointRouterClient, Match: and(tcpFromClient(a, port), hasFlag("RST")), Min: 1, Max: 1},
		{Desc: "that RST forwarded to the server", Point: PointRouterServer, Match: and(tcpFromClient(a, port), hasFlag("RST")), Min: 1, Max: 1},
		{Desc: "a FIN or RST from the server", Point: PointRouterServer, Match: and(tcpFromServer(a, port), func(p Pkt) bool { return hasFlag("FIN")(p) || hasFlag("RST")(p) }), Max: 0},
	}
}

// closedServerPackets: the server process ended (killed or shut down): its
// FIN, the client's one segment of data, and the RST answering it.
func closedServerPackets(a addrs, port uint16, finDesc string) []PacketCheck {
	return []PacketCheck{
		{Desc: finDesc, Point: PointRouterServer, AfterFault: true, Match: and(tcpFromServer(a, port), hasFlag("FIN")), Min: 1, Max: 1, Judge: afterFault},
		{Desc: "the client's data after the FIN (only the first write sends)", Point: PointRouterClient, AfterFault: true, Match: and(tcpFromClient(a, port), withData), Min: 1, Max: 1},
		{Desc: "the server's RST answering that data", Point: PointRouterServer, AfterFault: true, Match: and(tcpFromServer(a, port), hasFlag("RST")), Min: 1, Max: 1},
	}
}

func serverKilledPackets(s Settings, port uint16) []PacketCheck {
	a := addrsOf(s)
	return closedServerPackets(a, port, "the server's FIN, sent when the kernel closed the killed process's socket")
}

func hostShutdownPackets(s Settings, port uint16) []PacketCheck {
	a := addrsOf(s)
	return closedServerPackets(a, port, "the server's FIN after SIGTERM (before any SIGKILL)")
}

func hostCrashPackets(s Settings, port uint16) []PacketCheck {
	a := addrsOf(s)
	return []PacketCheck{
		{Desc: "the client's data and its retransmissions", Point: PointRouterClient, AfterFault: true, Match: and(tcpFromClient(a, port), withData), Min: 3, Max: -1, Judge: backingOff},
		{Desc: "anything reaching the client after the crash (no FIN, no RST, no ICMP)", Point: PointRouterClient, AfterFault: true, Match: toClient(a), Max: 0},
	}
}

func hostUnreachablePackets(s Settings, port uint16) []PacketCheck {
	a := addrsOf(s)
	return []PacketCheck{
		{Desc: "ICMP host-unreachable (ICMPv6 address-unreachable) from the router for the client's data", Point: PointRouterClient, AfterFault: true, Match: icmpUnreachable(a, a.host, port), Min: 2, Max: -1},
		{Desc: "the client's data and its retransmissions", Point: PointRouterClient, AfterFault: true, Match: and(tcpFromClient(a, port), withData), Min: 3, Max: -1, Judge: judgeRevert(s)},
		{Desc: "client segments forwarded to the server", Point: PointRouterServer, AfterFault: true, Match: tcpFromClient(a, port), Max: 0},
	}
}

func hostRebootPackets(s Settings, port uint16) []PacketCheck {
	a := addrsOf(s)
	return []PacketCheck{
		{Desc: "a FIN from the server (a crash sends none)", Point: PointRouterServer, Match: and(tcpFromServer(a, port), hasFlag("FIN")), Max: 0},
		{Desc: "the client's data after the reboot", Point: PointRouterServer, AfterFault: true, Match: and(tcpFromClient(a, port), withData), Min: 1, Max: 1},
		{Desc: "the rebooted server's RST answering it", Point: PointRouterServer, AfterFault: true, Match: and(tcpFromServer(a, port), flags("RST")), Min: 1, Max: 1},
		{Desc: "that RST forwarded to the client", Point: PointRouterClient, AfterFault: true, Match: and(tcpFromServer(a, port), flags("RST")), Min: 1, Max: 1},
	}
}

// judgeRevert: over IPv4 each ICMP host unreachable undoes the backoff;
// over IPv6 address unreachable does not (tcp_v6_err reverts only for
// no-route), so the retransmissions back off as after a crash.
func judgeRevert(s Settings) func([]time.Time, time.Time) (bool, string) {
	if s.Family == 6 {
		return backingOff
	}
	return notBackingOff(max(s.RTO, rtoRange[1]))
}
