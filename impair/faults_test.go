package impair_test

import (
	"errors"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/tcplab/tcplab/impair"
	"github.com/tcplab/tcplab/internal/labtest"
	"github.com/tcplab/tcplab/topology"
	"github.com/vishvananda/netlink"
)

// Each fault of the catalogue, applied to a real lab: its effect observed
// from the client's socket calls, the server's link or its processes, and
// then cleared. Nothing listens on the server port, so a path that works
// answers a SYN with a RST: ECONNREFUSED.

const port = 9

func newLab(t *testing.T) *topology.Lab { return labtest.NewLab(t, "i") }

// dial connects from the client to the server's port in family and returns
// the errno it failed with (nil: connected), or a timeout after d.
func dial(t *testing.T, l *topology.Lab, family int, d time.Duration) error {
	t.Helper()
	var err error
	addr := net.JoinHostPort(topology.Addr(topology.Server, family).String(), strconv.Itoa(port))
	if derr := l.Client.Do(func() error {
		c, e := net.DialTimeout("tcp", addr, d)
		if c != nil {
			c.Close()
		}
		err = e
		return nil
	}); derr != nil {
		t.Fatal(derr)
	}
	var errno syscall.Errno
	var ne net.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &errno):
		return errno
	case errors.As(err, &ne) && ne.Timeout():
		return errTimeout
	}
	t.Fatalf("dial %s: %v", addr, err)
	return nil
}

var errTimeout = errors.New("timeout")

func expectDial(t *testing.T, l *topology.Lab, family int, d time.Duration, want error) {
	t.Helper()
	if got := dial(t, l, family, d); got != want {
		t.Errorf("IPv%d connect: %v, want %v", family, got, want)
	}
}

func apply(t *testing.T, l *topology.Lab, f impair.Fault, o impair.Options) impair.Effect {
	t.Helper()
	e, err := f.Apply(l, o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func clear(t *testing.T, l *topology.Lab, f impair.Fault) {
	t.Helper()
	if err := f.Clear(l); err != nil {
		t.Fatalf("clear %s: %v", f.Name, err)
	}
}

// TestRuleFaults: drop makes a SYN go unanswered; each reject answers it
// with its ICMP or ICMPv6 code, which connect reports as that code's errno;
// a rule for one family leaves the other alone; clearing restores the RST.
func TestRuleFaults(t *testing.T) {
	for _, c := range []struct {
		f           impair.Fault
		want4, wan6 error
	}{
		{impair.Drop, errTimeout, errTimeout},
		{impair.RejectHost, syscall.EHOSTUNREACH, syscall.EHOSTUNREACH},
		{impair.RejectNet, syscall.ENETUNREACH, syscall.ENETUNREACH},
		{impair.RejectAdmin, syscall.EHOSTUNREACH, syscall.EACCES},
		{impair.RejectPort, syscall.ECONNREFUSED, syscall.ECONNREFUSED},
	} {
		t.Run(c.f.Name, func(t *testing.T) {
			t.Parallel()
			l := newLab(t)
			expectDial(t, l, 4, time.Second, syscall.ECONNREFUSED)
			apply(t, l, c.f, impair.Options{Port: port, SYN: true})
			// A rejected SYN fails connect once the ICMP finds the socket
			// unlocked: at the latest at the first retransmission (1 s).
			expectDial(t, l, 4, 1500*time.Millisecond, c.want4)
			expectDial(t, l, 6, 1500*time.Millisecond, c.wan6)
			clear(t, l, c.f)
			expectDial(t, l, 4, time.Second, syscall.ECONNREFUSED)
			expectDial(t, l, 6, time.Second, syscall.ECONNREFUSED)
			// One family only.
			apply(t, l, c.f, impair.Options{Family: 6, Port: port})
			expectDial(t, l, 4, time.Second, syscall.ECONNREFUSED)
			expectDial(t, l, 6, 1500*time.Millisecond, c.wan6)
			clear(t, l, c.f)
		})
	}
}

func serverLinkUp(t *testing.T, l *topology.Lab) bool {
	t.Helper()
	h, err := l.Server.Handle()
	if err != nil {
		t.Fatal(err)
	}
	link, err := h.LinkByName(topology.LinkName(l.ID, topology.Server, topology.Router))
	if err != nil {
		t.Fatal(err)
	}
	return link.Attrs().Flags&net.FlagUp != 0
}

// TestLinkFaults: link-down and crash set the server's link down, so a SYN
// goes unanswered; link-up and clearing bring it back with its routes.
func TestLinkFaults(t *testing.T) {
	for _, f := range []impair.Fault{impair.LinkDown, impair.Crash} {
		t.Run(f.Name, func(t *testing.T) {
			t.Parallel()
			l := newLab(t)
			apply(t, l, f, impair.Options{})
			if serverLinkUp(t, l) {
				t.Error("the server's link is still up")
			}
			expectDial(t, l, 4, 500*time.Millisecond, errTimeout)
			clear(t, l, f)
			if !serverLinkUp(t, l) {
				t.Error("the server's link is still down after clear")
			}
			expectDial(t, l, 4, time.Second, syscall.ECONNREFUSED)
			expectDial(t, l, 6, time.Second, syscall.ECONNREFUSED)
			apply(t, l, f, impair.Options{})
			apply(t, l, impair.LinkUp, impair.Options{})
			expectDial(t, l, 4, time.Second, syscall.ECONNREFUSED)
		})
	}
}

// TestCrashReported: the router's learnt entry for the server fails to
// resolve, and the router answers with ICMP host unreachable (ICMPv6
// address unreachable) after its neighbour probes.
func TestCrashReported(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	apply(t, l, impair.CrashReported, impair.Options{})
	for _, fam := range []int{4, 6} {
		expectDial(t, l, fam, 10*time.Second, syscall.EHOSTUNREACH)
	}
	h, err := l.Router.Handle()
	if err != nil {
		t.Fatal(err)
	}
	clear(t, l, impair.CrashReported)
	neighs, err := h.NeighList(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	permanent := 0
	for _, n := range neighs {
		if n.IP.Equal(topology.ServerIP) || n.IP.Equal(topology.ServerIP6) {
			if n.State == netlink.NUD_PERMANENT {
				permanent++
			}
		}
	}
	if permanent != 2 {
		t.Errorf("after clear, %d permanent neighbour entries for the server, want 2", permanent)
	}
	expectDial(t, l, 4, time.Second, syscall.ECONNREFUSED)
}

// startInServer starts a process in the server node; the returned channel
// closes when it has exited.
func startInServer(t *testing.T, l *topology.Lab, script string) (*exec.Cmd, chan struct{}) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	if err := l.Server.Start(cmd); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	return cmd, done
}

func exited(t *testing.T, done chan struct{}, within time.Duration) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(within):
		t.Fatalf("the server's process still runs after %v", within)
	}
}

// TestProcessFaults: kill ends the server's processes at once; shutdown
// sends SIGTERM, and SIGKILL after the grace period to one that ignores it;
// reboot ends them and comes back as a new namespace with the same
// addresses, answering a SYN with a RST again.
func TestProcessFaults(t *testing.T) {
	t.Run("kill", func(t *testing.T) {
		t.Parallel()
		l := newLab(t)
		cmd, done := startInServer(t, l, "sleep 60")
		apply(t, l, impair.Kill, impair.Options{})
		exited(t, done, 5*time.Second)
		if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signal() != syscall.SIGKILL {
			t.Errorf("ended by %v, want SIGKILL", ws.Signal())
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		t.Parallel()
		l := newLab(t)
		_, done := startInServer(t, l, `trap "" TERM; while :; do sleep 0.05; done`)
		// The trap is set before the loop's first sleep: wait for it.
		deadline := time.Now().Add(5 * time.Second)
		for {
			pids, err := l.Server.Processes()
			if err != nil {
				t.Fatal(err)
			}
			if len(pids) >= 2 || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond) // polling the node's process list
		}
		e := apply(t, l, impair.Shutdown, impair.Options{Grace: 200 * time.Millisecond})
		exited(t, done, 5*time.Second)
		if e.At.IsZero() || len(e.Notes) != 2 || e.Notes[0].T.Sub(e.At) < 200*time.Millisecond {
			t.Errorf("shutdown effect %+v: want SIGTERM, then SIGKILL after the 200 ms grace period, then the exit", e)
		}
	})
	t.Run("reboot", func(t *testing.T) {
		t.Parallel()
		l := newLab(t)
		_, done := startInServer(t, l, "sleep 60")
		ns, err := l.Server.NS()
		if err != nil {
			t.Fatal(err)
		}
		var before syscall.Stat_t
		if err := syscall.Fstat(int(ns), &before); err != nil {
			t.Fatal(err)
		}
		e := apply(t, l, impair.Reboot, impair.Options{})
		exited(t, done, 5*time.Second)
		if e.Recreated != topology.Server {
			t.Errorf("reboot recreated %q, want the server", e.Recreated)
		}
		ns, err = l.Server.NS()
		if err != nil {
			t.Fatal(err)
		}
		var after syscall.Stat_t
		if err := syscall.Fstat(int(ns), &after); err != nil {
			t.Fatal(err)
		}
		if after.Ino == before.Ino {
			t.Error("the server's namespace is the same one after the reboot")
		}
		expectDial(t, l, 4, time.Second, syscall.ECONNREFUSED)
		expectDial(t, l, 6, time.Second, syscall.ECONNREFUSED)
	})
}

// TestCatalogue: names are unique, every fault says what it does, and
// ClearAll leaves a lab whose path works after every fault that can be
// undone.
func TestCatalogue(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range impair.Faults() {
		if seen[f.Name] || f.Help == "" || f.Describe(impair.Options{}) == "" || (f.Node != topology.Router && f.Node != topology.Server) {
			t.Errorf("fault %q: duplicate or incomplete", f.Name)
		}
		seen[f.Name] = true
		if _, err := impair.Lookup(f.Name); err != nil {
			t.Error(err)
		}
	}
	if _, err := impair.Lookup("drp"); err == nil {
		t.Error("Lookup(drp) found a fault")
	}
	l := newLab(t)
	apply(t, l, impair.Drop, impair.Options{})
	apply(t, l, impair.Crash, impair.Options{})
	if err := impair.ClearAll(l); err != nil {
		t.Fatal(err)
	}
	expectDial(t, l, 4, time.Second, syscall.ECONNREFUSED)
	expectDial(t, l, 6, time.Second, syscall.ECONNREFUSED)
}
