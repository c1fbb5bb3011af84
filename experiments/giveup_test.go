package experiments

import (
	"testing"
	"time"
)

func TestGiveUp(t *testing.T) {
	for _, c := range []struct {
		n      int
		rto    time.Duration
		revert bool
		want   time.Duration
	}{
		{2, 200 * time.Millisecond, false, 3200 * time.Millisecond},
		{2, 230 * time.Millisecond, false, 3680 * time.Millisecond},
		{2, 200 * time.Millisecond, true, 1800 * time.Millisecond},
		{2, 230 * time.Millisecond, true, 2070 * time.Millisecond},
	} {
		if got := giveUp(c.n, c.rto, c.revert); got != c.want {
			t.Errorf("giveUp(%d, %v, %v) = %v, want %v", c.n, c.rto, c.revert, got, c.want)
		}
	}
	for _, c := range []struct {
		n, linear int
		syns      int
		giveUp    time.Duration
	}{
		{2, 0, 3, 7 * time.Second},    // before tcp_syn_linear_timeouts: 0, 1, 3 s
		{6, 0, 7, 127 * time.Second},  // the classic 127 s
		{2, 4, 6, 7 * time.Second},    // 0..5 s one apart, then a 2 s timeout
		{6, 4, 11, 131 * time.Second}, // 6.18 defaults
	} {
		syns, g := synSchedule(c.n, c.linear)
		if len(syns) != c.syns || g != c.giveUp {
			t.Errorf("synSchedule(%d, %d) = %v, %v; want %d SYNs, %v", c.n, c.linear, syns, g, c.syns, c.giveUp)
		}
	}
	if got := retries2Model(15); got != 924600*time.Millisecond {
		t.Errorf("retries2Model(15) = %v, want 924.6s", got)
	}
}

// TestGiveUpWrap: with the kernel's defaults, an ICMP host unreachable for
// every retransmission keeps them about one RTO apart only for 255 of them:
// at each 256th the 8-bit counter wraps and the backoff stays doubled. The
// figures are those measured on 6.18 (RTO 204 ms): 1066 segments and
// EHOSTUNREACH at 927.7 s.
func TestGiveUpWrap(t *testing.T) {
	g := giveUp(15, 204*time.Millisecond, true)
	if g < 926*time.Second || g > 928*time.Second {
		t.Errorf("giveUp(15, 204ms, revert) = %v, want about 927.2 s", g)
	}
	if retransGap(255, 204*time.Millisecond, true) != 204*time.Millisecond || retransGap(256, 204*time.Millisecond, true) != 408*time.Millisecond {
		t.Error("the gap doubles at the 256th retransmission, not before")
	}
	// The judge: 255 gaps of one RTO, then 256 of two.
	ts := []time.Time{time.Unix(0, 0)}
	for j := 1; j < 600; j++ {
		gap := 204 * time.Millisecond << (max(j-2, 0) / 256)
		ts = append(ts, ts[j-1].Add(gap))
	}
	if ok, d := notBackingOff(230*time.Millisecond)(ts, time.Time{}); !ok {
		t.Errorf("the wrapped schedule judged backing off: %.200s", d)
	}
	ts[100] = ts[99].Add(time.Second)
	if ok, _ := notBackingOff(230*time.Millisecond)(ts[:200], time.Time{}); ok {
		t.Error("a 1 s gap among the first 255 judged no backoff")
	}
}
