package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tcplab/tcplab/experiments"
	"github.com/tcplab/tcplab/internal/labtest"
	"github.com/tcplab/tcplab/topology"
)

// oneLineError checks the answer to hostile input: status 2 and exactly one
// line on stderr, containing want.
func oneLineError(t *testing.T, o outcome, want string, args ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(o.stderr), "\n")
	if o.code != 2 || len(lines) != 1 || !strings.Contains(o.stderr, want) {
		t.Errorf("tcplab %v: status %d, stderr %q; want status 2 and one line containing %q", args, o.code, o.stderr, want)
	}
}

// TestHostileFlagsAndNames extends TestBadInput: negative, absurd and
// malformed counts, parallelism and durations, case and lab names that
// are not names. Each gets one line and status 2, and no lab is made.
func TestHostileFlagsAndNames(t *testing.T) {
	labtest.Privileged(t)
	long := strings.Repeat("x", 300)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--count", "-1", "all"}, "--count -1"},
		{[]string{"run", "all", "--count=-5"}, "--count -5"},
		{[]string{"run", "--count", "abc", "all"}, `invalid value "abc"`},
		{[]string{"run", "--count", "99999999999999999999", "all"}, "out of range"},
		{[]string{"run", "--count"}, "needs an argument"},
		{[]string{"run", "--parallel", "0", "all"}, "--parallel 0"},
		{[]string{"run", "--parallel", "-3", "all"}, "--parallel -3"},
		{[]string{"run", "--parallel", "1000", "all"}, "--parallel 1000"},
		{[]string{"run", "--parallel", "x", "all"}, `invalid value "x"`},
		{[]string{"run", "--grace", "11m", "host-shutdown"}, "--grace 11m0s"},
		{[]string{"run", "--grace", "9999999999h", "host-shutdown"}, "grace"},
		{[]string{"run", "--grace=", "host-shutdown"}, "grace"},
		{[]string{"run", "connect-refused", "nosuch"}, `unknown case "nosuch"`},
		{[]string{"run", ""}, `unknown case ""`},
		{[]string{"run", "../../etc/passwd"}, "unknown case"},
		{[]string{"up", "--name", ""}, "lab name is empty"},
		{[]string{"up", "--name", "."}, "lab name"},
		{[]string{"up", "--name", ".."}, "lab name"},
		{[]string{"up", "--name", "/"}, "lab name"},
		{[]string{"up", "--name", "-x"}, "lab name"},
		{[]string{"up", "--name", "UPPER"}, "lab name"},
		{[]string{"up", "--name", "tab\tx"}, "lab name"},
		{[]string{"up", "--name", "new\nline"}, "lab name"},
		{[]string{"up", "--name", "é"}, "lab name"},
		{[]string{"up", "--name", long}, "300 characters"},
		{[]string{"up", "extra"}, "no arguments"},
		{[]string{"down", "../x"}, "lab name"},
		{[]string{"down", "a/b"}, "lab name"},
		{[]string{"down", ""}, "lab name is empty"},
		{[]string{"down", long}, "300 characters"},
		{[]string{"down", "a", "b"}, "exactly one"},
		{[]string{"exec", "../x", "client", "--", "true"}, "lab name"},
		{[]string{"exec", "nosuchlab", "switch", "--", "true"}, `unknown node "switch"`},
		{[]string{"exec", "nosuchlab", "client", "--"}, "usage"},
		{[]string{"status", "extra"}, "no arguments"},
		{[]string{"clean", "extra"}, "no arguments"},
	} {
		o := tcplab(t, "", c.args...)
		oneLineError(t, o, c.want, c.args...)
		if len(o.stderr) > 400 {
			t.Errorf("tcplab %v: a %d-byte error line", c.args, len(o.stderr))
		}
	}
	// Nothing was made for any of them: no lab has a name from the list.
	for _, n := range []string{"x", "a", "b", "nosuchlab"} {
		if topology.Exists(n) {
			t.Errorf("a lab %q exists", n)
		}
	}
}

// upLab makes a lab with `tcplab up` and removes it when the test ends.
func upLab(t *testing.T) string {
	t.Helper()
	name := "h" + experiments.NewLabID()[:7]
	if o := tcplab(t, "", "up", "--name", name); o.code != 0 {
		t.Fatalf("up: %+v", o)
	}
	inodes := labInodes(name)
	t.Cleanup(func() {
		os.Remove(filepath.Join(topology.StateDir, name+".json"))
		l, _ := topology.New(name)
		l.Down()
		noLeftovers(t, name, inodes)
	})
	return name
}

// statusLine runs `tcplab status` and returns its status and the stderr
// lines about lab id (other labs on the machine may have their own).
func statusLine(t *testing.T, id string) (int, []string) {
	t.Helper()
	o := tcplab(t, "", "status")
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(o.stderr), "\n") {
		if strings.Contains(l, `"`+id+`"`) || strings.Contains(l, " "+id+" ") {
			lines = append(lines, l)
		}
	}
	if !strings.Contains(o.stdout, "lab "+id+" ") {
		t.Errorf("status does not list lab %s:\n%s", id, o.stdout)
	}
	return o.code, lines
}

// TestCorruptStateFile: a lab whose state file was truncated, emptied,
// garbled, hand-edited, or replaced by something that is not a small
// regular file. Each verb says so in one line with status 2: status, exec
// and clean point at down and leave the lab alone, up refuses the name, and
// down removes the lab all the same, leaving nothing.
func TestCorruptStateFile(t *testing.T) {
	labtest.Privileged(t)
	corruptions := []struct {
		name  string
		apply func(path, id string) error
	}{
		{"empty", func(p, _ string) error { return os.WriteFile(p, nil, 0o600) }},
		{"garbage", func(p, _ string) error { return os.WriteFile(p, []byte("\x00\xffnot json at all\n"), 0o600) }},
		{"truncated", func(p, _ string) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(p, b[:len(b)/2], 0o600)
		}},
		{"other-lab", func(p, _ string) error {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s, err := topology.ParseState(b)
			if err != nil {
				return err
			}
			return os.WriteFile(p, []byte(strings.Replace(string(b), `"`+s.ID+`"`, `"otherlab"`, 1)), 0o600)
		}},
		{"bad-kind", func(p, id string) error {
			return os.WriteFile(p, []byte(fmt.Sprintf(`{"id":%q,"kind":"../../etc","pid":1}`, id)), 0o600)
		}},
		{"bad-pid", func(p, id string) error {
			return os.WriteFile(p, []byte(fmt.Sprintf(`{"id":%q,"kind":"up","pid":-7}`, id)), 0o600)
		}},
		{"unknown-field", func(p, id string) error {
			return os.WriteFile(p, []byte(fmt.Sprintf(`{"id":%q,"kind":"up","cmd":"rm -rf /"}`, id)), 0o600)
		}},
		{"oversized", func(p, id string) error {
			return os.WriteFile(p, []byte(fmt.Sprintf(`{"id":%q,"kind":"up"}`, id)+strings.Repeat(" ", 1<<20)), 0o600)
		}},
		{"symlink-to-dev-zero", func(p, _ string) error {
			os.Remove(p)
			return os.Symlink("/dev/zero", p)
		}},
		{"fifo", func(p, _ string) error {
			os.Remove(p)
			return syscall.Mkfifo(p, 0o600)
		}},
		{"directory", func(p, _ string) error {
			os.Remove(p)
			return os.Mkdir(p, 0o700)
		}},
	}
	for _, c := range corruptions {
		t.Run(c.name, func(t *testing.T) {
			id := upLab(t)
			inodes := labInodes(id)
			path := filepath.Join(topology.StateDir, id+".json")
			if err := c.apply(path, id); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(path) })

			code, lines := statusLine(t, id)
			if code != 2 || len(lines) != 1 || !strings.Contains(lines[0], "corrupt state file") || !strings.Contains(lines[0], "tcplab down "+id) {
				t.Errorf("status: status %d, lines about the lab %q", code, lines)
			}
			args := []string{"exec", id, "client", "--", "true"}
			oneLineError(t, tcplab(t, "", args...), "tcplab down "+id, args...)
			args = []string{"up", "--name", id}
			oneLineError(t, tcplab(t, "", args...), "corrupt state file", args...)
			if len(labInodes(id)) != 3 {
				t.Fatalf("the refused up changed the lab: namespaces %v", labInodes(id))
			}
			// down removes the lab all the same, and says what was wrong.
			args = []string{"down", id}
			oneLineError(t, tcplab(t, "", args...), "removed the lab", args...)
			noLeftovers(t, id, inodes)
		})
	}
	// clean keeps a lab whose state file is corrupt (nothing says whose it
	// is), and says so; `clean --all` would remove it, with every lab made
	// by up on the machine, so it is not run here.
	t.Run("clean", func(t *testing.T) {
		id := upLab(t)
		inodes := labInodes(id)
		if err := os.WriteFile(filepath.Join(topology.StateDir, id+".json"), []byte(`{"id":`), 0o600); err != nil {
			t.Fatal(err)
		}
		o := tcplab(t, "", "clean")
		if o.code != 2 || strings.Contains(o.stdout, "removed lab "+id) {
			t.Errorf("clean: %+v", o)
		}
		found := false
		for _, l := range strings.Split(strings.TrimSpace(o.stderr), "\n") {
			found = found || (strings.Contains(l, `"`+id+`"`) && strings.Contains(l, "corrupt state file") && strings.Contains(l, "tcplab down "+id))
		}
		if !found {
			t.Errorf("clean does not say lab %s's state file is corrupt: %q", id, o.stderr)
		}
		if len(labInodes(id)) != 3 {
			t.Errorf("clean removed namespaces of the lab: %v left", labInodes(id))
		}
		args := []string{"down", id}
		oneLineError(t, tcplab(t, "", args...), "removed the lab", args...)
		noLeftovers(t, id, inodes)
	})
}

// TestStaleStateFile: a state file whose lab no longer exists (its
// namespaces are gone). status and exec say so in one line with status 2;
// down removes the file, saying so, and so does clean (a leftover).
func TestStaleStateFile(t *testing.T) {
	labtest.Privileged(t)
	stale := func(t *testing.T) string {
		id := "s" + experiments.NewLabID()[:7]
		path := filepath.Join(topology.StateDir, id+".json")
		os.MkdirAll(topology.StateDir, 0o700)
		if err := os.WriteFile(path, []byte(fmt.Sprintf(`{"id":%q,"kind":"up","pid":1,"pid_start":1,"created":"2026-01-01T00:00:00Z","ready":true}`, id)), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(path) })
		return id
	}
	id := stale(t)
	code, lines := statusLine(t, id)
	if code != 2 || len(lines) != 1 || !strings.Contains(lines[0], "no longer exists") {
		t.Errorf("status: status %d, lines about the lab %q", code, lines)
	}
	args := []string{"exec", id, "server", "--", "true"}
	oneLineError(t, tcplab(t, "", args...), "no longer exists", args...)
	args = []string{"down", id}
	oneLineError(t, tcplab(t, "", args...), "stale state file", args...)
	noLeftovers(t, id, nil)

	id = stale(t)
	if o := tcplab(t, "", "clean"); !strings.Contains(o.stdout, "removed lab "+id) {
		t.Errorf("clean: %+v", o)
	}
	noLeftovers(t, id, nil)
}

// TestLeftoverNamespaces: namespaces of a lab whose state file is gone (a
// tcplab killed at just the wrong moment, or a hand-removed file). up
// refuses the name rather than take them over, exec points at clean, and
// clean removes them.
func TestLeftoverNamespaces(t *testing.T) {
	labtest.Privileged(t)
	id := upLab(t)
	inodes := labInodes(id)
	if err := os.Remove(filepath.Join(topology.StateDir, id+".json")); err != nil {
		t.Fatal(err)
	}
	args := []string{"up", "--name", id}
	oneLineError(t, tcplab(t, "", args...), "tcplab clean", args...)
	if got := labInodes(id); len(got) != 3 || got[topology.Client] != inodes[topology.Client] {
		t.Fatalf("the refused up changed the namespaces: %v, were %v", got, inodes)
	}
	if f := stateFilesOf(id); len(f) != 0 {
		t.Errorf("the refused up left state files %v", f)
	}
	args = []string{"exec", id, "router", "--", "true"}
	oneLineError(t, tcplab(t, "", args...), "tcplab clean", args...)
	if o := tcplab(t, "", "clean"); !strings.Contains(o.stdout, "removed lab "+id) {
		t.Errorf("clean: %+v", o)
	}
	noLeftovers(t, id, inodes)
}

// TestDownLeavesRunningLabsAlone: down refuses a lab that a live tcplab is
// running a case on (here, this test process), in one line with status 2,
// and leaves it whole.
func TestDownLeavesRunningLabsAlone(t *testing.T) {
	labtest.Privileged(t)
	id := "r" + experiments.NewLabID()[:7]
	l, err := topology.New(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Up(topology.KindRun); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Down(); err != nil {
			t.Error(err)
		}
		labtest.NoLeftovers(t, id)
	})
	args := []string{"down", id}
	oneLineError(t, tcplab(t, "", args...), "belongs to `tcplab run`", args...)
	if o := tcplab(t, "", "clean"); strings.Contains(o.stdout, id) {
		t.Errorf("clean removed a running lab: %+v", o)
	}
	if len(labInodes(id)) != 3 {
		t.Errorf("the lab lost namespaces: %v", labInodes(id))
	}
}
