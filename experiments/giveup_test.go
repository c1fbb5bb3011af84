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
		{2, 200 * time.Millisecond, false, 3 * time.Second},
		{2, 230 * time.Millisecond, false, 3450 * time.Millisecond},
		{3, 214 * time.Millisecond, false, 6634 * time.Millisecond}, // observed 6.64 s
		{15, 200 * time.Millisecond, false, 1044600 * time.Millisecond},
		{2, 200 * time.Millisecond, true, 1600 * time.Millisecond},
	} {
		if got := giveUp(c.n, c.rto, c.revert); got != c.want {
			t.Errorf("giveUp(%d, %v, %v) = %v, want %v", c.n, c.rto, c.revert, got, c.want)
		}
	}
	if got := retries2Model(15); got != 924600*time.Millisecond {
		t.Errorf("retries2Model(15) = %v, want 924.6s", got)
	}
}
