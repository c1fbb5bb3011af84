package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/experiments"
	"github.com/tcplab/tcplab/internal/labtest"
	"github.com/tcplab/tcplab/topology"
)

// TestCleanRemovesStubNamespaces: the remains of a tcplab killed between
// creating a namespace file and mounting the namespace on it (a plain,
// empty file in /run/netns) and between writing and linking a state file.
// status shows the file for what it is, exec and fault refuse the lab
// pointing at clean, and clean removes exactly that, with exit status 0 as far as
// this lab is concerned.
func TestCleanRemovesStubNamespaces(t *testing.T) {
	labtest.Privileged(t)
	id := "z" + experiments.NewLabID()[:7]
	l, err := topology.New(id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.Down()
		noLeftovers(t, id, nil)
	})
	os.MkdirAll(topology.NetnsDir, 0o755)
	os.MkdirAll(topology.StateDir, 0o700)
	child := startTcplab(t, "list")
	child.wait(30 * time.Second)
	dead := child.pid()
	state := fmt.Sprintf(`{"id":%q,"kind":"up","pid":%d,"pid_start":1,"created":"2026-01-01T00:00:00Z","ready":false}`, id, dead)
	if err := os.WriteFile(filepath.Join(topology.StateDir, id+".json"), []byte(state), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(topology.StateDir, fmt.Sprintf(".%s.%d.2.tmp", id, dead)), []byte(state), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(topology.NetnsDir, topology.NSName(id, topology.Client)), nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if o := tcplab(t, "", "status"); !strings.Contains(o.stdout, topology.NSName(id, topology.Client)+"  (not a namespace)") {
		t.Errorf("status: %+v", o)
	}
	// exec and fault refuse it alike, pointing at clean.
	for _, args := range [][]string{{"exec", id, "client", "--", "true"}, {"fault", id, "drop"}, {"fault", id, "--clear"}} {
		oneLineError(t, tcplab(t, "", args...), "tcplab clean", args...)
	}
	args := []string{"fault", "nosuchlab", "drop"}
	oneLineError(t, tcplab(t, "", args...), `no lab "nosuchlab"`, args...)
	// Other labs on the machine may make clean exit 2, and another
	// test's clean may remove this lab first: none of clean's complaints
	// may be about this lab, and nothing of it may remain.
	o := tcplab(t, "", "clean")
	if (o.code != 0 && o.code != 2) || strings.Contains(o.stderr, id) {
		t.Errorf("clean: %+v", o)
	}
	if !strings.Contains(o.stdout, "removed lab "+id) {
		t.Logf("clean did not list lab %s (removed meanwhile?): %q", id, o.stdout)
	}
	noLeftovers(t, id, nil)
}
