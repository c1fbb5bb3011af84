package topology_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/internal/labtest"
	"github.com/tcplab/tcplab/topology"
)

func inspect(t *testing.T, id string) topology.LabStatus {
	t.Helper()
	st, err := topology.Inspect(id)
	if err != nil {
		t.Fatalf("Inspect(%s): %v", id, err)
	}
	return st
}

// TestInspect: each condition a lab can be in, as Inspect reads it, and
// what each verb may do with it.
func TestInspect(t *testing.T) {
	labtest.Privileged(t)
	self, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	selfStart, err := topology.ParseStatStart(self)
	if err != nil {
		t.Fatal(err)
	}
	dead := deadPID(t)
	type want struct {
		cond            topology.Condition
		usable, mayDown bool
		problem         bool // status reports it (exit status 2)
		clean, cleanAll bool
		says            string // in Usable's error
	}
	for _, c := range []struct {
		name  string
		setup func(t *testing.T, l *topology.Lab)
		want  want
	}{
		{"running", func(*testing.T, *topology.Lab) {}, want{topology.LabRunning, true, false, false, false, false, ""}},
		{"up", func(t *testing.T, l *topology.Lab) {
			writeState(t, l.ID, stateOf(l.ID, "up", dead, 1, true))
		}, want{topology.LabReady, true, true, false, false, true, ""}},
		{"building", func(t *testing.T, l *topology.Lab) {
			writeState(t, l.ID, stateOf(l.ID, "up", os.Getpid(), selfStart, false))
		}, want{topology.LabBuilding, false, false, false, false, false, "still being built"}},
		{"abandoned", func(t *testing.T, l *topology.Lab) {
			writeState(t, l.ID, stateOf(l.ID, "up", dead, 1, false))
		}, want{topology.LabAbandoned, false, true, false, true, true, "tcplab clean"}},
		{"abandoned-run", func(t *testing.T, l *topology.Lab) {
			writeState(t, l.ID, stateOf(l.ID, "run", dead, 1, true))
		}, want{topology.LabAbandoned, false, true, false, true, true, "tcplab clean"}},
		{"incomplete", func(t *testing.T, l *topology.Lab) {
			writeState(t, l.ID, stateOf(l.ID, "up", dead, 1, true))
			if err := l.Server.Delete(); err != nil {
				t.Fatal(err)
			}
		}, want{topology.LabIncomplete, false, true, true, false, true, "tcplab down"}},
		{"stub", func(t *testing.T, l *topology.Lab) {
			writeState(t, l.ID, stateOf(l.ID, "up", dead, 1, true))
			if err := l.Router.Delete(); err != nil {
				t.Fatal(err)
			}
			stub(t, l.ID, topology.Router)
		}, want{topology.LabIncomplete, false, true, true, false, true, "not a mounted namespace"}},
		{"stale", func(t *testing.T, l *topology.Lab) {
			for _, n := range l.Nodes() {
				if err := n.Delete(); err != nil {
					t.Fatal(err)
				}
			}
			writeState(t, l.ID, stateOf(l.ID, "up", dead, 1, true))
		}, want{topology.LabStale, false, true, true, true, true, "no longer exists"}},
		{"leftover", func(t *testing.T, l *topology.Lab) {
			os.Remove(filepath.Join(topology.StateDir, l.ID+".json"))
		}, want{topology.LabLeftover, false, true, false, true, true, "tcplab clean"}},
		{"leftover-stub", func(t *testing.T, l *topology.Lab) {
			os.Remove(filepath.Join(topology.StateDir, l.ID+".json"))
			for _, n := range l.Nodes() {
				if err := n.Delete(); err != nil {
					t.Fatal(err)
				}
			}
			stub(t, l.ID, topology.Client)
		}, want{topology.LabLeftover, false, true, false, true, true, "tcplab clean"}},
		{"corrupt", func(t *testing.T, l *topology.Lab) {
			writeState(t, l.ID, `{"id":`)
		}, want{topology.LabCorrupt, false, true, true, false, true, "corrupt state file"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newLab(t)
			c.setup(t, l)
			st := inspect(t, l.ID)
			w := c.want
			if st.Condition != w.cond {
				t.Fatalf("condition %v, want %v (%+v)", st.Condition, w.cond, st)
			}
			uerr := st.Usable()
			if (uerr == nil) != w.usable || (uerr != nil && !strings.Contains(uerr.Error(), w.says)) {
				t.Errorf("Usable() = %v; want usable %v, saying %q", uerr, w.usable, w.says)
			}
			if derr := st.MayDown(); (derr == nil) != w.mayDown {
				t.Errorf("MayDown() = %v; want allowed %v", derr, w.mayDown)
			}
			if p := st.Problem(); (p != nil) != w.problem {
				t.Errorf("Problem() = %v; want one %v", p, w.problem)
			}
			if got := st.Cleanable(false); got != w.clean {
				t.Errorf("Cleanable(false) = %v, want %v", got, w.clean)
			}
			if got := st.Cleanable(true); got != w.cleanAll {
				t.Errorf("Cleanable(true) = %v, want %v", got, w.cleanAll)
			}
			if _, _, err := topology.Open(l.ID); (err == nil) != w.usable {
				t.Errorf("Open: %v; want usable %v", err, w.usable)
			}
			if s := st.Summary(); s == "" || strings.Contains(s, "\n") {
				t.Errorf("Summary() = %q", s)
			}
			if w.cond == topology.LabCorrupt && !errors.Is(uerr, topology.ErrBadState) {
				t.Errorf("Usable() = %v, not ErrBadState", uerr)
			}
		})
	}
	t.Run("absent", func(t *testing.T) {
		st := inspect(t, "nosuchlb")
		if st.Condition != topology.LabAbsent || st.Exists() || st.Namespaces() != topology.NamespacesGone {
			t.Fatalf("%+v", st)
		}
		if err := st.Usable(); !errors.Is(err, topology.ErrNoLab) {
			t.Errorf("Usable() = %v, want ErrNoLab", err)
		}
		if err := st.MayDown(); !errors.Is(err, topology.ErrNoLab) {
			t.Errorf("MayDown() = %v, want ErrNoLab", err)
		}
	})
	if _, err := topology.Inspect("../x"); err == nil {
		t.Error("Inspect accepted an invalid id")
	}
}
