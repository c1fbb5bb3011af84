package experiments

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/capture"
)

// TestBackingOffCapped: the gaps of a full-length --kernel-defaults crash,
// as the kernel made them, double until TCP_RTO_MAX and then stay there;
// gaps that stop doubling short of it are not backoff. One timer that
// fired late (under emulation) does not make the next gap look short.
func TestBackingOffCapped(t *testing.T) {
	at := func(gaps ...time.Duration) []time.Time {
		ts := []time.Time{time.Unix(0, 0)}
		for _, g := range gaps {
			ts = append(ts, ts[len(ts)-1].Add(g))
		}
		return ts
	}
	ms := time.Millisecond
	full := at(207*ms, 208*ms, 420*ms, 827*ms, 1660*ms, 3300*ms, 6660*ms, 13310*ms, 26880*ms, 53250*ms,
		108*time.Second, 120*time.Second, 120*time.Second, 120*time.Second, 120*time.Second, 120*time.Second)
	judge := backingOff(rtoRange)
	if ok, detail := judge(full, time.Time{}); !ok {
		t.Errorf("a backoff capped at TCP_RTO_MAX judged wrong: %s", detail)
	}
	if ok, detail := judge(at(211*ms, 371*ms, 420*ms, 834*ms), time.Time{}); !ok {
		t.Errorf("a backoff with one late timer judged wrong: %s", detail)
	}
	for name, ts := range map[string][]time.Time{
		"stops doubling":          at(207*ms, 208*ms, 420*ms, 827*ms, 830*ms),
		"stops short of 120 s":    at(207*ms, 208*ms, 420*ms, 26880*ms, 53250*ms, 60*time.Second),
		"grows past 120 s":        at(207*ms, 208*ms, 420*ms, 107*time.Second, 120*time.Second, 240*time.Second),
		"no backoff from start":   at(200*ms, 200*ms, 200*ms, 200*ms),
		"a late timer, then none": at(211*ms, 371*ms, 420*ms, 440*ms),
		"backs off from too long": at(207*ms, 900*ms, 1800*ms, 3600*ms),
	} {
		if ok, detail := judge(ts, time.Time{}); ok {
			t.Errorf("%s: judged backoff: %s", name, detail)
		}
	}
}

// TestDistinctWrites: a write retransmitted before the RST came back is one
// write; two writes are two, however the checks count frames.
func TestDistinctWrites(t *testing.T) {
	a := addrsOf(4)
	pkt := func(ms int, seq uint32) Pkt {
		d := capture.Decoded{Proto: "tcp", Src: a.client, Dst: a.server, SrcPort: 40000, DstPort: 8000, Flags: capture.PSH | capture.ACK, Seq: seq, Len: 100}
		return Pkt{Decoded: d, Point: PointRouterClient, T: time.Unix(0, 0).Add(time.Duration(ms) * time.Millisecond)}
	}
	check := []PacketCheck{{Desc: "writes", Point: PointRouterClient, Match: and(tcpFromClient(a, 8000), withData), Distinct: bySeq, Min: 1, Max: 1}}
	same := map[string][]Pkt{PointRouterClient: {pkt(1, 1000), pkt(210, 1000)}}
	if r := checkPackets(check, same, time.Time{}); !r[0].OK || r[0].Got != 1 {
		t.Errorf("a write and its retransmission: %+v", r[0])
	}
	two := map[string][]Pkt{PointRouterClient: {pkt(1, 1000), pkt(5, 1100)}}
	if r := checkPackets(check, two, time.Time{}); r[0].OK || r[0].Got != 2 {
		t.Errorf("two writes: %+v", r[0])
	}
}

// TestProbesOnly: of a connection's bare ACKs, those one below another's
// sequence number are keepalive probes (snd_una - 1); the other is an
// ordinary ACK, and is not counted as a probe.
func TestProbesOnly(t *testing.T) {
	ack := func(seq uint32, ms int) Pkt {
		return Pkt{Decoded: capture.Decoded{Flags: capture.ACK, Seq: seq}, Point: PointRouterClient, T: time.Unix(0, 0).Add(time.Duration(ms) * time.Millisecond)}
	}
	check := PacketCheck{Point: PointRouterClient, Match: keepaliveProbe, Select: probesOnly, Min: 2, Max: 2}
	withACK := map[string][]Pkt{PointRouterClient: {ack(1000, 10), ack(999, 1000), ack(999, 2000)}}
	if r := checkPackets([]PacketCheck{check}, withACK, time.Time{}); r[0].Got != 2 || !r[0].OK {
		t.Errorf("a delayed ACK and two probes: counted %d, want 2", r[0].Got)
	}
	probes := map[string][]Pkt{PointRouterClient: {ack(999, 1000), ack(999, 2000), ack(999, 3000)}}
	if r := checkPackets([]PacketCheck{check}, probes, time.Time{}); r[0].Got != 3 || r[0].OK {
		t.Errorf("three probes: counted %d (ok %v), want 3 and not ok", r[0].Got, r[0].OK)
	}
}

// TestPeerWriteWindow: a recv of data whose delivery the other end's write
// decides is timed from that write, not from the recv's own call, which a
// slow machine may make only after the data arrived (pmtu-blackhole under
// emulation: the server's recv began 880 ms after the client's write and
// returned at once). Data that came too soon after the write still fails.
func TestPeerWriteWindow(t *testing.T) {
	w := afterPeerWrite(&Window{Min: 531 * time.Millisecond, Max: 1230 * time.Millisecond})
	want := []Call{{Node: "client", Syscall: "send", Result: "ok"}, {Node: "server", Syscall: "recv", Result: "ok", Within: w}}
	events := func(recvAt, recvFor float64) []EventOut {
		return []EventOut{
			{Node: "client", Syscall: "send", Result: "ok", TMS: 115.9, DurationMS: 16.1, AtMS: 2649.1},
			{Node: "server", Syscall: "recv", Result: "ok", TMS: recvAt - 2533.2, DurationMS: recvFor, AtMS: recvAt},
		}
	}
	if d := compare(want, events(3535.4, 3.9), true, "Linux"); len(d) != 0 {
		t.Errorf("the recv begun after the data arrived: %v", d)
	}
	if d := compare(want, events(3257.2, 625), true, "Linux"); len(d) != 0 {
		t.Errorf("the recv begun before the write: %v", d)
	}
	if d := compare(want, events(2740, 107), true, "Linux"); len(d) != 1 {
		t.Errorf("data 107 ms after the write: %v, want one difference", d)
	}
}

// TestTimeWaitCopies: in time-wait-bind, a FIN sent again because its ACK
// was late (seen beside a VM under emulation), the ACK repeated to answer
// it, and the RST of an end the copy reached after the connection had
// ended there leave the checks as they were; a RST with no FIN copy
// before it still fails them.
func TestTimeWaitCopies(t *testing.T) {
	a := addrsOf(4)
	const port = 8002 // the third connection: the client closes first
	seg := func(fromClient bool, flags capture.TCPFlags, seq, ack uint32) Pkt {
		d := capture.Decoded{Proto: "tcp", Src: a.server, Dst: a.client, SrcPort: port, DstPort: 40000, Flags: flags, Seq: seq, Ack: ack}
		if fromClient {
			d.Src, d.Dst, d.SrcPort, d.DstPort = a.client, a.server, 40000, port
		}
		return Pkt{Decoded: d, Point: PointRouterServer}
	}
	conn := []Pkt{
		seg(true, capture.SYN, 100, 0), seg(false, capture.SYN|capture.ACK, 500, 101), seg(true, capture.ACK, 101, 501),
		seg(true, capture.FIN|capture.ACK, 101, 501), seg(false, capture.ACK, 501, 102),
		seg(false, capture.FIN|capture.ACK, 501, 102), seg(true, capture.ACK, 102, 502),
	}
	var checks []PacketCheck
	for _, c := range registry["time-wait-bind"].Packets(Timing{Settings: Settings{Family: 4, Port: 8000}}) {
		if strings.HasPrefix(c.Desc, fmt.Sprintf("port %d:", port)) {
			checks = append(checks, c)
		}
	}
	if len(checks) != 2 {
		t.Fatalf("%d checks for port %d, want 2", len(checks), port)
	}
	with := func(extra ...Pkt) map[string][]Pkt {
		return map[string][]Pkt{PointRouterServer: append(append([]Pkt{}, conn...), extra...)}
	}
	for name, pkts := range map[string]map[string][]Pkt{
		"as usual":                            with(),
		"the server's FIN again, ACKed again": with(seg(false, capture.FIN|capture.ACK, 501, 102), seg(true, capture.ACK, 102, 502)),
		"the FIN again, answered by a RST":    with(seg(false, capture.FIN|capture.ACK, 501, 102), seg(true, capture.RST, 102, 0)),
	} {
		for _, r := range checkPackets(checks, pkts, time.Time{}) {
			if !r.OK {
				t.Errorf("%s: %s: got %d, want %s", name, r.Desc, r.Got, r.Want)
			}
		}
	}
	if r := checkPackets(checks, with(seg(true, capture.RST, 102, 0)), time.Time{}); r[1].OK {
		t.Errorf("a RST with no FIN copy before it: %s: got %d, judged ok", r[1].Desc, r[1].Got)
	}
}
