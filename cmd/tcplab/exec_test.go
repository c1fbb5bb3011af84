package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tcplab/tcplab/internal/labtest"
)

// TestExecFailure: a command that execve refuses (an executable file the
// kernel cannot run) gives one line and status 2, and the lab is as it
// was: `tcplab exec` then works in the same node.
func TestExecFailure(t *testing.T) {
	labtest.Privileged(t)
	id := upLab(t)
	bad := filepath.Join(t.TempDir(), "not-a-program")
	if err := os.WriteFile(bad, []byte("\x00\x01 not a program\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"exec", id, "client", "--", bad}
	oneLineError(t, tcplab(t, "", args...), "exec format error", args...)
	if o := tcplab(t, "", "exec", id, "client", "--", "true"); o.code != 0 {
		t.Errorf("exec true after a failed exec: %+v", o)
	}
}
