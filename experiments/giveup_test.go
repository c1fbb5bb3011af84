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
