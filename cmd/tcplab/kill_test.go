package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tcplab/tcplab/internal/labtest"
	"github.com/tcplab/tcplab/topology"
	"golang.org/x/sys/unix"
)

// TestHardKill: tcplab killed with SIGKILL in each phase of a case. Nothing
// it started keeps running (each agent gets SIGKILL from the kernel through
// its parent-death signal), and `tcplab clean` then removes every
// namespace, link and state file the dead tcplab left.
func TestHardKill(t *testing.T) {
	labtest.Privileged(t)
	for _, c := range []struct {
		phase, id string
		hold      bool // stop each agent as soon as it is seen
		// reach waits, watching the lab, until the case is in the phase;
		// false if the case went past it first.
		reach func(t *testing.T, p *proc, lab string, agents map[string]int) bool
	}{
		{"before connect", "connect-timeout", false, func(t *testing.T, p *proc, lab string, _ map[string]int) bool {
			// The router drops the SYNs: connect is retrying.
			until(t, "the client's SYN_SENT socket", 10*time.Second, func() bool {
				return hasState(tcpStates(lab, topology.Client), tcpSynSent)
			})
			return true
		}},
		{"established", "host-crash", true, func(t *testing.T, p *proc, lab string, agents map[string]int) bool {
			// Hold the case between the handshake and the fault, by
			// letting the agents (stopped as soon as they were seen) run
			// one step at a time; each waits on a state the case cannot
			// leave while the other agent is stopped.
			cli, srv := agents[topology.Client], agents[topology.Server]
			step := func(run, hold int, what string, done func() bool) {
				t.Helper()
				syscall.Kill(run, syscall.SIGCONT)
				until(t, what, 10*time.Second, done)
				if hold != 0 {
					syscall.Kill(hold, syscall.SIGSTOP)
					stopped(t, hold)
				}
			}
			// An agent may have been seen only after it said it was ready
			// (a busy machine runs it on before the test stops it), so
			// the steps start from what the stopped agents have done.
			if hasState(tcpStates(lab, topology.Client), tcpEstablished) {
				return false // the server may have accepted already
			}
			if !hasState(tcpStates(lab, topology.Server), tcpListen) {
				// tcplab asks the server to listen only once both agents
				// are ready: the client gets ready while the server is
				// held, so it cannot be sent a connect yet.
				step(cli, cli, "the client agent to be ready", func() bool { return readingStdin(cli) })
			}
			// The server gets ready if it was not, listens and answers;
			// tcplab asks the (stopped) client to connect.
			step(srv, srv, "the server to listen", func() bool {
				return readingStdin(srv) && hasState(tcpStates(lab, topology.Server), tcpListen)
			})
			// The client connects; tcplab asks the (stopped) server to
			// accept, and waits.
			step(cli, 0, "the client's ESTABLISHED socket", func() bool {
				return hasState(tcpStates(lab, topology.Client), tcpEstablished)
			})
			if up, ok := linkUp(lab, topology.Server, topology.LinkName(lab, topology.Server, topology.Router)); !up || !ok {
				t.Errorf("the server's link is down (found %v): the fault came before the kill", ok)
				return false
			}
			return true
		}},
		{"after the fault", "host-crash", false, func(t *testing.T, p *proc, lab string, _ map[string]int) bool {
			// The server's link is down; the client retransmits into it.
			until(t, "the server's link to go down", 10*time.Second, func() bool {
				up, ok := linkUp(lab, topology.Server, topology.LinkName(lab, topology.Server, topology.Router))
				return ok && !up
			})
			return true
		}},
	} {
		t.Run(strings.ReplaceAll(c.phase, " ", "-"), func(t *testing.T) {
			t.Parallel()
			for attempt := 1; !killAndClean(t, c.id, c.hold, c.reach); attempt++ {
				if attempt == holdAttempts {
					t.Fatalf("%s went past the phase before tcplab could be killed, %d times", c.id, attempt)
				}
				t.Logf("attempt %d went past the phase; again", attempt)
			}
		})
	}
}

// readingStdin reports whether the process's main thread is blocked
// reading its standard input: an agent does that only once it has said it
// is ready, waiting for its next command.
func readingStdin(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/syscall", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 1 && f[0] == strconv.Itoa(unix.SYS_READ) && f[1] == "0x0"
}

// killAndClean runs case id, kills tcplab with SIGKILL once reach says the
// case is in the phase, checks that nothing it started survives it, and
// that `tcplab clean` removes what it left. It returns reach's answer:
// the checks hold in any case.
func killAndClean(t *testing.T, id string, hold bool, reach func(t *testing.T, p *proc, lab string, agents map[string]int) bool) bool {
	p := startTcplab(t, "run", id)
	lab, agents, ok := agentsOf(t, p, 20*time.Second, hold)
	if !ok {
		t.Fatalf("tcplab ended before its agents were seen; stderr:\n%s", p.stderr.String())
	}
	inodes := labInodes(lab)
	defer pinNamespaces(lab)()
	fds := pidfds(t, agents)
	inPhase := reach(t, p, lab, agents)
	p.signal(syscall.SIGKILL)
	if code := p.wait(10 * time.Second); code != -1 {
		t.Fatalf("tcplab exited %d before it was killed; stderr:\n%s", code, p.stderr.String())
	}
	// No process of the dead tcplab survives it, stopped ones included.
	waitGone(t, fds, 5*time.Second)
	if ps := processesIn(inodes); len(ps) > 0 {
		t.Errorf("processes %v still run in the lab after tcplab was killed", ps)
	}
	// Its lab is left for clean (which another test's clean, running at
	// the same time, may have got to first).
	t.Logf("left by the killed tcplab: %d namespaces, state files %v", len(labInodes(lab)), stateFilesOf(lab))
	o := tcplab(t, "", "clean")
	if o.code != 0 && (o.code != 2 || strings.Contains(o.stderr, lab)) {
		t.Errorf("clean: %+v", o)
	}
	if !strings.Contains(o.stdout, "removed lab "+lab) {
		t.Logf("clean did not list lab %s (removed meanwhile?): %q", lab, o.stdout)
	}
	t.Logf("leftovers of lab %s after clean: %d", lab, leftovers(lab, inodes))
	noLeftovers(t, lab, inodes)
	return inPhase
}
