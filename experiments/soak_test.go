package experiments

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/internal/labtest"
)

// Soak settings: TCPLAB_SOAK_ROUNDS rounds of every case (default 3, 2
// with -short), TCPLAB_SOAK_PARALLEL at a time (default 4).
const (
	soakRoundsEnv   = "TCPLAB_SOAK_ROUNDS"
	soakParallelEnv = "TCPLAB_SOAK_PARALLEL"
)

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// usage is what a long-running tcplab holds.
type usage struct{ fds, goroutines, threads int }

func (u usage) String() string {
	return fmt.Sprintf("%d fds, %d goroutines, %d threads", u.fds, u.goroutines, u.threads)
}

func measure(t *testing.T) usage {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	threads := -1
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			threads, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return usage{len(fds), runtime.NumGoroutine(), threads}
}

// Bounds on growth between the first round (which warms up the runtime's
// thread pool and the libraries' lazily opened sockets) and the last.
// Threads follow the peak of concurrent work, which varies from round to
// round: each running case holds a few (agents' parked forking threads,
// namespace switches); a leak would add some per round, without bound.
const (
	slackFDs        = 2
	slackGoroutines = 4
)

func slackThreads(parallel int) int { return 4*parallel + 4 }

// TestSoak runs every case round after round, up to TCPLAB_SOAK_PARALLEL at
// a time, as `tcplab run all --count N --parallel P` does, and checks that
// every verdict is match and that the open file descriptors, goroutines and
// threads of the process do not grow with the rounds. It logs the figures
// per round. A long soak: TCPLAB_SOAK_ROUNDS=200 go test -run TestSoak
// -timeout 0 -v ./experiments
func TestSoak(t *testing.T) {
	labtest.Privileged(t)
	def := 3
	if testing.Short() {
		def = 2
	}
	rounds := envInt(t, soakRoundsEnv, def)
	parallel := envInt(t, soakParallelEnv, 4)
	cases := All()
	var first, last usage
	runs, bad := 0, map[string]int{}
	began := time.Now()
	for round := 1; round <= rounds; round++ {
		start := time.Now()
		results := RunAll(cases, Config{}, parallel, nil)
		for _, r := range results {
			runs++
			if r.Verdict != Match {
				bad[r.Case]++
				t.Errorf("round %d: %s: verdict %s: %s %v", round, r.Case, r.Verdict, r.Error, r.Mismatches)
			}
			labtest.NoLeftovers(t, r.Lab)
		}
		u := settle(t, first, round > 1, parallel)
		if round == 1 {
			first = u
		}
		last = u
		t.Logf("round %d: %.1f s, %s", round, time.Since(start).Seconds(), u)
	}
	labtest.ThreadsHome(t)
	flakes := 0
	for _, n := range bad {
		flakes += n
	}
	t.Logf("%d rounds, %d case runs in %.0f s: %d not match (%.2f%%) %v; first round %s, last %s",
		rounds, runs, time.Since(began).Seconds(), flakes, 100*float64(flakes)/float64(runs), bad, first, last)
	if last.fds > first.fds+slackFDs {
		t.Errorf("open file descriptors grew from %d to %d", first.fds, last.fds)
	}
	if last.goroutines > first.goroutines+slackGoroutines {
		t.Errorf("goroutines grew from %d to %d", first.goroutines, last.goroutines)
	}
	if last.threads > first.threads+slackThreads(parallel) {
		t.Errorf("threads grew from %d to %d", first.threads, last.threads)
	}
}

// settle measures the process once the round's stragglers are gone:
// goroutines that close a netlink subscription or reap an agent end a
// moment after the case that started them. It polls until the counts are
// within bounds of the first round's, or a deadline passes.
func settle(t *testing.T, first usage, compare bool, parallel int) usage {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	if !compare {
		// The first round sets the bounds: wait until its stragglers are
		// gone too, that is until the counts hold still a while.
		u, same := measure(t), 0
		for same < 10 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			v := measure(t)
			if v == u {
				same++
			} else {
				u, same = v, 0
			}
		}
		return u
	}
	for {
		u := measure(t)
		if time.Now().After(deadline) ||
			(u.fds <= first.fds+slackFDs && u.goroutines <= first.goroutines+slackGoroutines && u.threads <= first.threads+slackThreads(parallel)) {
			return u
		}
		time.Sleep(10 * time.Millisecond)
	}
}
