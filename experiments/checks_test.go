package experiments

import (
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/capture"
)

// TestBackingOffCapped: the gaps of a full-length --kernel-defaults crash,
// as the kernel made them, double until TCP_RTO_MAX and then stay there;
// gaps that stop doubling short of it are not backoff.
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
	if ok, detail := backingOff(full, time.Time{}); !ok {
		t.Errorf("a backoff capped at TCP_RTO_MAX judged wrong: %s", detail)
	}
	for name, ts := range map[string][]time.Time{
		"stops doubling":        at(207*ms, 208*ms, 420*ms, 827*ms, 830*ms),
		"stops short of 120 s":  at(207*ms, 208*ms, 420*ms, 26880*ms, 53250*ms, 60*time.Second),
		"grows past 120 s":      at(207*ms, 208*ms, 420*ms, 107*time.Second, 120*time.Second, 240*time.Second),
		"no backoff from start": at(200*ms, 200*ms, 200*ms, 200*ms),
	} {
		if ok, detail := backingOff(ts, time.Time{}); ok {
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

// TestEitherOutcome: connect-unreachable's connect may fail at the first
// retransmission or at once, as the race between the router's ICMP and
// connect going to sleep goes; each is accepted and named, anything else
// is a mismatch.
func TestEitherOutcome(t *testing.T) {
	c, err := Lookup("connect-unreachable")
	if err != nil {
		t.Fatal(err)
	}
	want := c.LinuxAccount(c.SettingsFor(Config{}.Complete()).Predict(Measured{})).Calls
	ev := func(errno string, at float64) EventOut {
		return EventOut{Node: "client", Syscall: "connect", Result: errno, TMS: at, DurationMS: at}
	}
	for _, tc := range []struct {
		at    [2]float64
		ok    bool
		means string
	}{
		{[2]float64{1010, 1020}, true, "only stored"},
		{[2]float64{16, 1020}, true, "at once"},
		{[2]float64{600, 1020}, false, ""},
		{[2]float64{3000, 1020}, false, ""},
	} {
		got := []EventOut{ev("EHOSTUNREACH", tc.at[0]), ev("ENETUNREACH", tc.at[1])}
		diffs := compare(want, got, true, "expected")
		if (len(diffs) == 0) != tc.ok {
			t.Errorf("connects at %v ms: differences %v, want ok=%v", tc.at, diffs, tc.ok)
		}
		if o := outcomes(want, got); tc.ok && (len(o) != 2 || !strings.Contains(o[0], tc.means)) {
			t.Errorf("connects at %v ms: outcomes %q, want the first to say %q", tc.at, o, tc.means)
		}
	}
}
