package experiments

import (
	"fmt"
	"strconv"
	"time"

	"github.com/tcplab/tcplab/capture"
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

func addrsOf(family int) addrs {
	host, net := unreachableCodes(family)
	return addrs{
		topology.Addr(topology.Client, family).String(), topology.Addr(topology.Server, family).String(),
		topology.Addr(topology.Router, family).String(), capture.ICMPProto(family), capture.UnreachableType(family), host, net,
	}
}

// unreachableCodes are the router's answers for "the host is unreachable"
// and "the network is unreachable" in a family: ICMP host- and
// net-unreachable, or ICMPv6 address-unreachable and no-route.
func unreachableCodes(family int) (host, net uint8) {
	if family == 6 {
		return capture.AddrUnreachable6, capture.NoRoute6
	}
	return capture.HostUnreachable, capture.NetUnreachable
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

// flagsAre matches segments with exactly these flags.
func flagsAre(f capture.TCPFlags) func(Pkt) bool { return func(p Pkt) bool { return p.Flags == f } }

// hasFlag matches segments with these flags set, among others.
func hasFlag(f capture.TCPFlags) func(Pkt) bool { return func(p Pkt) bool { return p.Flags.Has(f) } }

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
// probe) the gaps double (exponential backoff) until they reach
// TCP_RTO_MAX (120 s), where they stay. Each gap is judged against the
// timeout the kernel set, rto doubled once per retransmission, with
// schedule's tolerance, not against the gap before: a timer that fired
// late lengthens its own gap only, since the next timeout is armed when it
// fires (seen under software emulation: 211, 371, 420, 834 ms).
func backingOff(rto [2]time.Duration) func([]time.Time, time.Time) (bool, string) {
	return func(ts []time.Time, _ time.Time) (bool, string) {
		capped := false
		for i := 2; i < len(ts); i++ {
			g := ts[i].Sub(ts[i-1])
			lo, hi := retransGap(i-2, rto[0], false), retransGap(i-2, rto[1], false)
			if g < lo-lo/10-50*time.Millisecond || g > hi+hi*15/100+200*time.Millisecond {
				if lo == tcpRTOMax {
					return false, gaps(ts) + "; past the doubling, a gap is not TCP_RTO_MAX (120 s)"
				}
				return false, fmt.Sprintf("%s; the gaps do not double: gap %d is %s, the timers predict %s", gaps(ts), i, fmtDur(g), fmtSpan(lo, hi))
			}
			capped = capped || lo == tcpRTOMax
		}
		if capped {
			return true, gaps(ts) + ": a tail loss probe, then exponential backoff up to TCP_RTO_MAX (120 s)"
		}
		return true, gaps(ts) + ": a tail loss probe, then exponential backoff"
	}
}

// fmtSpan gives lo..hi, or one duration when they are equal.
func fmtSpan(lo, hi time.Duration) string {
	if lo == hi {
		return fmtDur(lo)
	}
	return fmtDur(lo) + ".." + fmtDur(hi)
}

// notBackingOff checks that no gap exceeds twice the largest RTO a lab
// connection gets: each ICMP undid the backoff. Only after the 256th, 512th,
// ... retransmission, where the kernel's 8-bit retransmission counter wraps
// and that ICMP undoes nothing (see giveUp), does the allowed gap double.
func notBackingOff(rto time.Duration) func([]time.Time, time.Time) (bool, string) {
	return func(ts []time.Time, _ time.Time) (bool, string) {
		// ts[0] is the data, ts[1] the tail loss probe, ts[k+1] the k-th
		// retransmission; the gap before ts[j] follows retransmission j-2.
		wrapped := false
		for j := 1; j < len(ts); j++ {
			level := max(j-2, 0) / 256
			wrapped = wrapped || level > 0
			if g := ts[j].Sub(ts[j-1]); g > 2*rto<<level {
				return false, gaps(ts) + "; a gap backed off to " + fmtDur(g)
			}
		}
		if wrapped {
			return true, gaps(ts) + ": no backoff, each ICMP undid it, but at each 256th retransmission, where the kernel's 8-bit retransmission counter wrapped"
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

// judgeRevert: over IPv4 each ICMP host unreachable undoes the backoff;
// over IPv6 address unreachable does not (tcp_v6_err reverts only for
// no-route), so the retransmissions back off as after a crash.
func judgeRevert(t Timing) func([]time.Time, time.Time) (bool, string) {
	if t.Family == 6 {
		return backingOff(rtoBounds(t))
	}
	return notBackingOff(max(t.RTO, rtoRange[1]))
}

// bySeq counts a segment's copies once: a retransmission of the same bytes
// (a tail loss probe, a timer's retransmission) is not a new write, nor a
// RST answering each copy a new answer.
func bySeq(p Pkt) string { return fmt.Sprintf("%d+%d", p.Seq, p.Len) }

// withoutCrossedRST drops, from a connection's segments, the RSTs after a
// FIN's second copy: a FIN sent again because its ACK was late can reach
// the other end after the connection has ended there (the copy crossing
// the final ACK), which answers it with a RST. keepTimeWait says why that
// RST changes nothing else.
func withoutCrossedRST(pkts []Pkt) []Pkt {
	seen := map[string]bool{}
	crossed := false
	var out []Pkt
	for _, p := range pkts {
		if p.Flags&capture.RST != 0 && crossed {
			continue
		}
		if p.Flags&capture.FIN != 0 {
			k := bySegment(p)
			crossed = crossed || seen[k]
			seen[k] = true
		}
		out = append(out, p)
	}
	return out
}

// bySegment counts a segment's copies once, whatever the segment: the same
// sender, flags, sequence number and length, and for a segment that takes
// no sequence space (a bare ACK, a RST) the same acknowledgement. A FIN
// sent again because its ACK was late (its acknowledgement may have moved
// on), and the ACK repeated to answer it, are copies; the handshake's ACK
// and a later one are not.
func bySegment(p Pkt) string {
	k := fmt.Sprintf("%s:%d %v %d+%d", p.Src, p.SrcPort, p.Flags, p.Seq, p.Len)
	if p.Len == 0 && p.Flags&(capture.SYN|capture.FIN) == 0 {
		k += fmt.Sprintf(" ack %d", p.Ack)
	}
	return k
}

// closedServerPackets: the server process ended (killed or shut down): its
// FIN, the client's one segment of data, and the RST answering it.
func closedServerPackets(t Timing, finDesc string) []PacketCheck {
	a := addrsOf(t.Family)
	return []PacketCheck{
		{Desc: finDesc, Point: PointRouterServer, AfterFault: true, Match: and(tcpFromServer(a, t.Port), hasFlag(capture.FIN)), Distinct: bySeq, Min: 1, Max: 1, Judge: afterFault},
		{Desc: "the client's writes sent after the FIN (only the first write sends; a copy retransmitted before the RST came back counts once)", Point: PointRouterClient, AfterFault: true, Match: and(tcpFromClient(a, t.Port), withData), Distinct: bySeq, Min: 1, Max: 1},
		{Desc: "the server's RST answering that data (once per copy, with one sequence number)", Point: PointRouterServer, AfterFault: true, Match: and(tcpFromServer(a, t.Port), hasFlag(capture.RST)), Distinct: bySeq, Min: 1, Max: 1},
	}
}
