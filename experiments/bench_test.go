package experiments

import (
	"sort"
	"testing"
	"time"

	"github.com/tcplab/tcplab/internal/labtest"
)

// BenchmarkCase runs each case in fast mode (shortened timers, the default
// configuration) on its own lab, as `tcplab run CASE` does. Besides ns/op it
// reports the case's floor (the time the kernel's timers impose under the
// knobs in force), and the medians of the whole run (lab built and removed
// included) and of tcplab's overhead, the run minus the floor. The overhead
// splits into setup-ms, the run outside the case's steps (lab, agents,
// captures, teardown), and beyond-floor-ms, the steps' time past the floor
// (the kernel's timer slack and the RTO above its minimum, for the cases
// that wait on a timer).
func BenchmarkCase(b *testing.B) {
	labtest.Privileged(b)
	for _, c := range All() {
		b.Run(c.ID, func(b *testing.B) {
			var floor float64
			var wall, over, setup, beyond []float64
			for range b.N {
				r := RunCase(c, Config{})
				if r.Verdict == Error {
					b.Fatalf("%s: %s", c.ID, r.Error)
				}
				if r.Verdict != Match {
					// A verdict is the tests' business; a benchmark
					// reports time.
					b.Logf("%s: %s: %v", c.ID, r.Verdict, r.Mismatches)
				}
				floor = r.FloorMS
				wall = append(wall, r.WallMS)
				over = append(over, r.OverheadMS)
				setup = append(setup, r.WallMS-r.ElapsedMS)
				beyond = append(beyond, r.ElapsedMS-r.FloorMS)
			}
			b.ReportMetric(floor, "floor-ms")
			b.ReportMetric(benchMedian(wall), "wall-ms")
			b.ReportMetric(benchMedian(over), "overhead-ms")
			b.ReportMetric(benchMedian(setup), "setup-ms")
			b.ReportMetric(benchMedian(beyond), "beyond-floor-ms")
		})
	}
}

// BenchmarkRunAll runs every case in fast mode, one at a time and all at
// once, and reports the whole run's time against the longest floor among
// the cases: all at once can take no less than that.
func BenchmarkRunAll(b *testing.B) {
	labtest.Privileged(b)
	cases := All()
	for _, m := range []struct {
		name     string
		parallel int
	}{{"serial", 1}, {"parallel", len(cases)}} {
		b.Run(m.name, func(b *testing.B) {
			var total []float64
			var longest, sum float64
			for range b.N {
				start := time.Now()
				res := RunAll(cases, Config{}, m.parallel, nil)
				total = append(total, ms(time.Since(start)))
				longest, sum = 0, 0
				for _, r := range res {
					if r.Verdict == Error {
						b.Fatalf("%s: %s", r.Case, r.Error)
					}
					longest = max(longest, r.FloorMS)
					sum += r.FloorMS
				}
			}
			t := benchMedian(total)
			b.ReportMetric(t, "total-ms")
			b.ReportMetric(longest, "longest-floor-ms")
			b.ReportMetric(sum, "sum-floor-ms")
			if longest > 0 {
				b.ReportMetric(t/longest, "x-longest-floor")
			}
		})
	}
}

func benchMedian(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}
