package topology_test

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/tcplab/tcplab/internal/labtest"
)

// TestExecFailureStaysOut: a failed Node.Exec leaves no thread of the
// process in the lab's namespace.
func TestExecFailureStaysOut(t *testing.T) {
	l := newLab(t)
	notExec := filepath.Join(t.TempDir(), "not-executable")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		err := l.Client.Exec(notExec, []string{notExec}, os.Environ())
		if !errors.Is(err, syscall.EACCES) {
			t.Fatalf("Exec of a file without execute permission = %v, want EACCES", err)
		}
		if err := l.Server.Exec("/nonexistent/tcplab-test", []string{"x"}, nil); !errors.Is(err, syscall.ENOENT) {
			t.Fatalf("Exec of a missing file = %v, want ENOENT", err)
		}
	}
	labtest.ThreadsHome(t)
}
