package topology_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/internal/labtest"
	"github.com/tcplab/tcplab/topology"
)

// deadPID returns the pid of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	child := exec.Command(os.Args[0], "-test.run=^$")
	if err := child.Run(); err != nil {
		t.Fatal(err)
	}
	return child.Process.Pid
}

func writeState(t *testing.T, id, content string) {
	t.Helper()
	if err := os.MkdirAll(topology.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(topology.StateDir, id+".json"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func stateOf(id, kind string, pid int, start uint64, ready bool) string {
	return fmt.Sprintf(`{"id":%q,"kind":%q,"pid":%d,"pid_start":%d,"created":"2026-01-01T00:00:00Z","ready":%v}`, id, kind, pid, start, ready)
}

// stub replaces node role's namespace with what a tcplab killed between
// creating the file and mounting the namespace on it leaves: an empty,
// read-only plain file.
func stub(t *testing.T, id, role string) {
	t.Helper()
	p := filepath.Join(topology.NetnsDir, topology.NSName(id, role))
	if err := os.WriteFile(p, nil, 0o444); err != nil {
		t.Fatal(err)
	}
}

// TestTeardownOfStubs: a tcplab killed between creating a namespace file
// and mounting the namespace on it leaves an empty plain file in
// /run/netns (and one killed while writing its state, a temporary state
// file). Down and Clean remove exactly that, without entering it: setns on
// it would fail with EINVAL.
func TestTeardownOfStubs(t *testing.T) {
	labtest.Privileged(t)
	dead := deadPID(t)
	tmp := func(t *testing.T, id string) string {
		p := filepath.Join(topology.StateDir, fmt.Sprintf(".%s.%d.1.tmp", id, dead))
		if err := os.WriteFile(p, []byte("{"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	gone := func(t *testing.T, paths ...string) {
		t.Helper()
		for _, p := range paths {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("%s remains", p)
			}
		}
	}
	// Killed while making the second namespace: the client's is mounted,
	// the router's a plain file; the state file names a dead owner.
	t.Run("clean", func(t *testing.T) {
		l := newLab(t)
		if err := l.Router.Delete(); err != nil {
			t.Fatal(err)
		}
		if err := l.Server.Delete(); err != nil {
			t.Fatal(err)
		}
		stub(t, l.ID, topology.Router)
		writeState(t, l.ID, stateOf(l.ID, "up", dead, 1, false))
		tp := tmp(t, l.ID)
		removed, _, err := topology.CleanLabs(false)
		if err != nil && strings.Contains(err.Error(), l.ID) {
			t.Fatalf("CleanLabs: %v", err)
		}
		if !contains(ids(removed), l.ID) {
			// Another test's clean, at the same time, may have got to it
			// first; what matters is that nothing of it remains.
			t.Logf("CleanLabs removed %v, not %s", ids(removed), l.ID)
		}
		labtest.NoLeftovers(t, l.ID)
		gone(t, tp)
	})
	// Only a plain file, no state file: a leftover, removed by Down.
	t.Run("down", func(t *testing.T) {
		l := newLab(t)
		for _, n := range l.Nodes() {
			if err := n.Delete(); err != nil {
				t.Fatal(err)
			}
		}
		os.Remove(filepath.Join(topology.StateDir, l.ID+".json"))
		stub(t, l.ID, topology.Server)
		tp := tmp(t, l.ID)
		l2, _ := topology.New(l.ID)
		if err := l2.Down(); err != nil {
			t.Fatalf("Down: %v", err)
		}
		labtest.NoLeftovers(t, l.ID)
		gone(t, tp)
	})
	// A symbolic link where a namespace should be is removed, not
	// followed: what it points at stays as it is.
	t.Run("symlink", func(t *testing.T) {
		l := newLab(t)
		if err := l.Client.Delete(); err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(t.TempDir(), "target")
		if err := os.WriteFile(target, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(topology.NetnsDir, topology.NSName(l.ID, topology.Client))
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		l2, _ := topology.New(l.ID)
		if err := l2.Down(); err != nil {
			t.Fatalf("Down: %v", err)
		}
		gone(t, link)
		if _, err := os.Stat(target); err != nil {
			t.Errorf("the link's target: %v", err)
		}
	})
}

func ids(rs []topology.Removed) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}
