package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcplab/tcplab/experiments"
	"github.com/tcplab/tcplab/internal/labtest"
	"github.com/tcplab/tcplab/topology"
	"golang.org/x/sys/unix"
)

// interruptedStatus is the exit status tcplab owes each signal.
var interruptedStatus = map[syscall.Signal]int{syscall.SIGINT: 130, syscall.SIGTERM: 143, syscall.SIGHUP: 129}

// TestInterruptEveryCase: SIGINT or SIGTERM while a case runs (its lab up,
// both agents started) removes the lab, its agents and its state file, and
// tcplab exits 130 or 143. The case is held when its agents are seen, and
// the signal sent to tcplab while it is stopped, so that it is taken in the
// middle of the case however short the case is.
func TestInterruptEveryCase(t *testing.T) {
	labtest.Privileged(t)
	for i, id := range experiments.IDs() {
		sig := syscall.SIGINT
		if i%2 == 1 {
			sig = syscall.SIGTERM
		}
		t.Run(id+"/"+experiments.SignalName(sig), func(t *testing.T) {
			t.Parallel()
			for attempt := 1; !interruptCase(t, id, sig); attempt++ {
				if attempt == holdAttempts {
					t.Fatalf("%s ended before its agents could be held, %d times", id, attempt)
				}
			}
		})
	}
}

// interruptCase runs case id, holds it once both its agents exist (each is
// stopped as soon as it is seen, so tcplab waits for them), and interrupts
// tcplab with sig; false if the case ended before its agents were seen.
func interruptCase(t *testing.T, id string, sig syscall.Signal) bool {
	p := startTcplab(t, "run", id)
	lab, agents, ok := agentsOf(t, p, 20*time.Second, true)
	if !ok {
		t.Logf("%s ended before its agents were seen; again", id)
		return false
	}
	inodes := labInodes(lab)
	// An agent the case itself ended (a reboot, a shutdown) just as it was
	// seen: the case is past the hold; let it finish and try again.
	for _, pid := range agents {
		if unix.Kill(pid, 0) != nil {
			for _, c := range agents {
				unix.Kill(c, unix.SIGCONT)
			}
			p.wait(60 * time.Second)
			t.Logf("%s: an agent ended as it was seen; again", id)
			return false
		}
	}
	fds := pidfds(t, agents)
	p.signal(syscall.SIGSTOP)
	stopped(t, p.pid())
	if p.exited() {
		t.Fatal("tcplab ended before the signal")
	}
	p.signal(sig)
	p.signal(syscall.SIGCONT)
	if code := p.wait(30 * time.Second); code != interruptedStatus[sig] {
		t.Errorf("exit status %d after %v, want %d; stderr:\n%s", code, sig, interruptedStatus[sig], p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "removing the lab") {
		t.Errorf("stderr does not say the lab is being removed:\n%s", p.stderr.String())
	}
	// The agents, stopped, are killed all the same.
	waitGone(t, fds, 5*time.Second)
	noLeftovers(t, lab, inodes)
	return true
}

// TestInterruptTerminal: Ctrl-C on a terminal signals the whole foreground
// process group, tcplab and its agents at once. The agents die of it; tcplab
// still removes everything and exits 130.
func TestInterruptTerminal(t *testing.T) {
	labtest.Privileged(t)
	p := startTcplab(t, "run", "connect-timeout")
	lab, agents := mustAgentsOf(t, p, 20*time.Second)
	inodes := labInodes(lab)
	fds := pidfds(t, agents)
	// The client's SYNs are being dropped: the case is under way.
	until(t, "the client's SYN_SENT socket", 10*time.Second, func() bool {
		return hasState(tcpStates(lab, topology.Client), tcpSynSent)
	})
	if err := syscall.Kill(-p.pid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(30 * time.Second); code != 130 {
		t.Errorf("exit status %d, want 130; stderr:\n%s", code, p.stderr.String())
	}
	waitGone(t, fds, 5*time.Second)
	noLeftovers(t, lab, inodes)
}

// TestSecondInterruptDuringTeardown: more signals while the first one's
// teardown runs are absorbed: the teardown completes, and the exit status
// is the first signal's.
func TestSecondInterruptDuringTeardown(t *testing.T) {
	labtest.Privileged(t)
	p := startTcplab(t, "run", "host-crash")
	lab, agents := mustAgentsOf(t, p, 20*time.Second)
	inodes := labInodes(lab)
	fds := pidfds(t, agents)
	until(t, "the client's ESTABLISHED socket", 10*time.Second, func() bool {
		return hasState(tcpStates(lab, topology.Client), tcpEstablished)
	})
	p.signal(syscall.SIGINT)
	// The handler prints this line, then tears down: stop tcplab there and
	// queue more signals for when it resumes.
	p.waitLine("removing the lab", 10*time.Second)
	p.signal(syscall.SIGSTOP)
	stopped(t, p.pid())
	midway := len(stateFilesOf(lab)) > 0
	p.signal(syscall.SIGINT)
	p.signal(syscall.SIGTERM)
	p.signal(syscall.SIGCONT)
	p.signal(syscall.SIGINT)
	if code := p.wait(30 * time.Second); code != 130 {
		t.Errorf("exit status %d, want 130 (the first signal's); stderr:\n%s", code, p.stderr.String())
	}
	if !midway {
		t.Log("the teardown had already removed the state file when tcplab was stopped")
	}
	waitGone(t, fds, 5*time.Second)
	noLeftovers(t, lab, inodes)
}

// TestInterruptUp: SIGINT or SIGTERM while `tcplab up` is building its lab
// removes what was built, and up exits 130 or 143. tcplab is stopped as soon
// as its state file appears (before the first namespace), and the signal
// sent while it is stopped; if the lab was somehow complete by then, the
// attempt is repeated.
func TestInterruptUp(t *testing.T) {
	labtest.Privileged(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(experiments.SignalName(sig), func(t *testing.T) {
			for attempt := 1; ; attempt++ {
				name := "i" + experiments.NewLabID()[:6]
				path := filepath.Join(topology.StateDir, name+".json")
				p := startTcplab(t, "up", "--name", name)
				// A busy poll: the lab is built in milliseconds.
				deadline := time.Now().Add(20 * time.Second)
				for {
					if _, err := os.Stat(path); err == nil {
						break
					}
					if p.exited() || time.Now().After(deadline) {
						t.Fatalf("no state file for lab %s; stderr:\n%s", name, p.stderr.String())
					}
				}
				p.signal(syscall.SIGSTOP)
				held := stoppedOrGone(t, p.pid())
				s, err := topology.ReadState(name)
				if held && err != nil {
					t.Fatalf("state of the lab being built: %v", err)
				}
				if !held || s.Ready {
					// Too late: up finished before it was stopped.
					p.cmd.Process.Kill()
					p.wait(10 * time.Second)
					l, _ := topology.New(name)
					l.Down()
					if attempt == holdAttempts {
						t.Fatalf("up finished before it could be stopped, %d times", attempt)
					}
					continue
				}
				inodes := labInodes(name)
				p.signal(sig)
				p.signal(syscall.SIGCONT)
				if code := p.wait(30 * time.Second); code != interruptedStatus[sig] {
					t.Errorf("exit status %d, want %d; stdout:\n%s\nstderr:\n%s", code, interruptedStatus[sig], p.stdout.String(), p.stderr.String())
				}
				// The namespaces made after the stop were not recorded:
				// no process may be in any namespace named for the lab.
				noLeftovers(t, name, inodes)
				return
			}
		})
	}
}

// TestOutputClosed: `tcplab run ... | head` ends the run when head exits:
// the next report written to the closed pipe raises SIGPIPE. tcplab then
// removes its labs, the one still running a case included, and exits 141,
// instead of dying of the signal and leaving them behind.
func TestOutputClosed(t *testing.T) {
	labtest.Privileged(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close() // the reader is gone before anything is written
	cmd := exec.Command(exe, "run", "--parallel", "2", "connect-refused", "connect-timeout")
	cmd.Args[0] = "tcplab"
	cmd.Env = append(os.Environ(), cliEnv+"=1")
	cmd.Stdout = w
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	// Collect the labs it makes, with their namespaces, until it ends.
	labs := map[string]map[string]uint64{}
	var werr error
	for done := false; !done; {
		select {
		case werr = <-waited:
			done = true
		case <-time.After(200 * time.Microsecond):
		}
		ents, _ := os.ReadDir(topology.StateDir)
		for _, e := range ents {
			id, ok := strings.CutSuffix(e.Name(), ".json")
			if !ok {
				continue
			}
			if s, err := topology.ReadState(id); err == nil && s.PID == cmd.Process.Pid {
				if ino := labInodes(id); len(ino) > len(labs[id]) {
					labs[id] = ino
				}
			}
		}
	}
	code := 0
	if ee, ok := werr.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	if code != 141 {
		t.Errorf("exit status %d (%v), want 141; stderr:\n%s", code, werr, stderr.String())
	}
	if len(labs) == 0 {
		t.Error("no lab of the run was seen")
	}
	for id, ino := range labs {
		noLeftovers(t, id, ino)
	}
}
