package experiments

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcplab/tcplab/internal/labtest"
)

// TCPLAB_LOAD_ROUNDS is how many rounds of the whole catalogue, both
// families, TestUnderLoad runs while every CPU is busy (default 0: only the
// CPU hog itself is checked; .ci/run runs one round, BENCHMARKS.md says how
// to run the long form).
const loadRoundsEnv = "TCPLAB_LOAD_ROUNDS"

// hog keeps every CPU busy with processes of its own until stopped: the
// work a busy CI machine does beside the lab.
type hog struct{ cmds []*exec.Cmd }

func startHog(t *testing.T) *hog {
	t.Helper()
	h := &hog{}
	for range runtime.NumCPU() {
		c := exec.Command("/bin/sh", "-c", "while :; do :; done")
		if err := c.Start(); err != nil {
			h.stop()
			t.Fatalf("start a CPU hog: %v", err)
		}
		h.cmds = append(h.cmds, c)
	}
	t.Cleanup(h.stop)
	return h
}

func (h *hog) stop() {
	for _, c := range h.cmds {
		_ = c.Process.Kill()
		_ = c.Wait()
	}
	h.cmds = nil
}

// cpuTime is the CPU time the hog's processes have used.
func (h *hog) cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var total time.Duration
	for _, c := range h.cmds {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		ut, _ := strconv.Atoi(f[11])
		st, _ := strconv.Atoi(f[12])
		total += time.Duration(ut+st) * time.Second / 100 // USER_HZ
	}
	return total
}

// TestUnderLoad runs every case, in both families, TCPLAB_LOAD_ROUNDS
// times, ten labs at a time, while a hog keeps every CPU busy, and requires
// every verdict to be match: a verdict must not depend on how busy the
// machine is.
func TestUnderLoad(t *testing.T) {
	labtest.Privileged(t)
	rounds := 0
	if os.Getenv(loadRoundsEnv) != "" {
		rounds = envInt(t, loadRoundsEnv, 1)
	}
	h := startHog(t)
	began := time.Now()
	var jobs []Job
	for range rounds {
		for _, fam := range []int{4, 6} {
			for _, c := range All() {
				jobs = append(jobs, Job{Case: c, Family: fam})
			}
		}
	}
	bad := 0
	RunJobs(jobs, Config{}, 10, func(r Result) {
		if r.Verdict != Match {
			bad++
			t.Errorf("IPv%d %s under load: %s %s %v", r.Family, r.Case, r.Verdict, r.Error, r.Mismatches)
		}
	})
	wall := time.Since(began)
	used := h.cpuTime(t)
	// The hog must really have taken CPU time: at least a quarter of a CPU
	// for the run (the labs and whatever else runs compete with it).
	if want := max(time.Second/2, wall/4); rounds > 0 && used < want {
		t.Errorf("the CPU hog used %v in %v: it did not load the machine", used, wall)
	}
	t.Logf("%d case runs under load (%d CPUs busy) in %v: %d not match; the hog used %v of CPU", len(jobs), len(h.cmds), wall.Round(time.Millisecond), bad, used)
	if rounds == 0 {
		// Without rounds, check only that the hog runs and stops.
		deadline := time.Now().Add(5 * time.Second)
		for h.cpuTime(t) < 100*time.Millisecond && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond) // polling the hog's CPU time
		}
		if h.cpuTime(t) < 100*time.Millisecond {
			t.Error("the CPU hog took no CPU time")
		}
		pids := []int{}
		for _, c := range h.cmds {
			pids = append(pids, c.Process.Pid)
		}
		h.stop()
		for _, p := range pids {
			if syscall.Kill(p, 0) == nil {
				t.Errorf("hog process %d still alive after stop", p)
			}
		}
	}
}
