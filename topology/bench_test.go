package topology_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/tcplab/tcplab/internal/labtest"
	"github.com/tcplab/tcplab/topology"
)

// benchIDs gives lab ids unique to this process: a leftover of another run
// cannot collide with them.
func benchIDs(b *testing.B, prefix string) func() string {
	r := make([]byte, 2)
	if _, err := rand.Read(r); err != nil {
		b.Fatal(err)
	}
	tag := prefix + hex.EncodeToString(r)
	n := 0
	return func() string {
		n++
		return fmt.Sprintf("%s%d", tag, n%100)
	}
}

// reportSpread adds the median and the 90th percentile of the timed
// operations: the mean (ns/op) hides how the kernel's background work,
// freeing the namespaces of earlier iterations, lands on some of them.
func reportSpread(b *testing.B, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(ds[len(ds)/2]), "median-ms")
	b.ReportMetric(ms(ds[len(ds)*9/10]), "p90-ms")
}

// BenchmarkUp times Lab.Up alone; the Down after each is not timed.
func BenchmarkUp(b *testing.B) {
	labtest.Privileged(b)
	next := benchIDs(b, "u")
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		l, err := topology.New(next())
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		err = l.Up(topology.KindRun)
		ds = append(ds, time.Since(start))
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Down(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	reportSpread(b, ds)
}

// BenchmarkDown times Lab.Down alone, on a lab that is up.
func BenchmarkDown(b *testing.B) {
	labtest.Privileged(b)
	next := benchIDs(b, "d")
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		l, err := topology.New(next())
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Up(topology.KindRun); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		err = l.Down()
		ds = append(ds, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportSpread(b, ds)
}

// BenchmarkUpDownSpread is BenchmarkUpDown with the median and the 90th
// percentile of a whole up and down.
func BenchmarkUpDownSpread(b *testing.B) {
	labtest.Privileged(b)
	next := benchIDs(b, "s")
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		l, err := topology.New(next())
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := l.Up(topology.KindRun); err != nil {
			b.Fatal(err)
		}
		if err := l.Down(); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(start))
	}
	b.StopTimer()
	reportSpread(b, ds)
}
