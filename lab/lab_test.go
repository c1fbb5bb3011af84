package lab_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/impair"
	"github.com/tcplab/tcplab/internal/labtest"
	"github.com/tcplab/tcplab/lab"
	"github.com/tcplab/tcplab/topology"
)

// The tests and the examples build namespaces: without root, none can run
// (the examples cannot skip), so the package's tests are skipped as a
// whole, saying so in the form CI looks for.
func TestMain(m *testing.M) {
	if err := lab.Available(); err != nil {
		fmt.Printf("--- SKIP: package lab: %v\n", err)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestLab: a connection made inside the nodes, a process started in one,
// a fault by name, a capture, and nothing left after the test.
func TestLab(t *testing.T) {
	var id string
	t.Run("use", func(t *testing.T) {
		l := lab.New(t)
		id = l.ID
		if l.Server.Addr().String() != "203.0.113.2" || l.Client.Addr6().String() != "2001:db8:c::2" {
			t.Errorf("addresses: %s, %s", l.Server.Addr(), l.Client.Addr6())
		}
		ln, err := l.Server.Listen("tcp", "[2001:db8:5::2]:9000")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		accepted := make(chan string, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				accepted <- err.Error()
				return
			}
			defer c.Close()
			accepted <- c.RemoteAddr().String()
		}()
		capt, err := l.Router.Capture(l.Server)
		if err != nil {
			t.Fatal(err)
		}
		c, err := l.Client.DialContext(t.Context(), "tcp", "[2001:db8:5::2]:9000")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got := <-accepted; !strings.HasPrefix(got, "[2001:db8:c::2]:") {
			t.Errorf("the server accepted %s", got)
		}
		frames, err := capt.Stop()
		if err != nil {
			t.Fatal(err)
		}
		syn := false
		for _, f := range frames {
			p := capture.Decode(f.Data)
			syn = syn || (p.Flags == capture.SYN && p.Src == "2001:db8:c::2")
		}
		if !syn {
			t.Errorf("no SYN among %d frames at the router's server side", len(frames))
		}

		if _, err := l.Client.DialContext(t.Context(), "tcp", "example.org:80"); err == nil || !strings.Contains(err.Error(), "IP address") {
			t.Errorf("a name: %v", err)
		}
		if _, err := l.Client.Capture(l.Server); err == nil {
			t.Error("a capture between client and server, which share no link")
		}
		if err := l.Fault("no-such-fault", impair.Options{}); err == nil {
			t.Error("an unknown fault was accepted")
		}

		// A process in the server node, in its namespace.
		cmd := exec.Command("sleep", "60")
		if err := l.Server.Start(cmd); err != nil {
			t.Fatal(err)
		}
		ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid))
		var want string
		_ = l.Server.Do(func() error { want, _ = os.Readlink("/proc/thread-self/ns/net"); return nil })
		if ns == "" || ns != want {
			t.Errorf("the process is in %q, the server node is %q", ns, want)
		}

		// The router drops: a connection attempt times out.
		if err := l.Fault("drop", impair.Options{Port: 9000}); err != nil {
			t.Fatal(err)
		}
		short := l.Client.Dialer(&net.Dialer{Timeout: 300 * time.Millisecond})
		if _, err := short(t.Context(), "tcp", "203.0.113.2:9000"); err == nil {
			t.Error("dialled through a router that drops")
		}
		if err := l.ClearFaults(); err != nil {
			t.Fatal(err)
		}
		go cmd.Wait()
	})
	labtest.NoLeftovers(t, id)
	labtest.ThreadsHome(t)
	if topology.Exists(id) {
		t.Errorf("lab %s exists after its test", id)
	}
}

func TestCloseTwice(t *testing.T) {
	l, err := lab.Build()
	if err != nil {
		t.Fatal(err)
	}
	err1, err2 := l.Close(), l.Close()
	if err1 != nil || !errors.Is(err2, err1) {
		t.Errorf("Close: %v, then %v", err1, err2)
	}
	labtest.NoLeftovers(t, l.ID)
}
