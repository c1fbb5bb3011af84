package topology_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/tcplab/tcplab/internal/labtest"
	"github.com/tcplab/tcplab/topology"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// serverTimeWait opens a connection from the client to the server on port,
// the server closing first, and waits until the server's end is in
// TIME_WAIT. No descriptor of it is left open.
func serverTimeWait(t *testing.T, l *topology.Lab, port string) {
	t.Helper()
	var ln net.Listener
	if err := l.Server.Do(func() error {
		var err error
		ln, err = net.Listen("tcp4", "203.0.113.2:"+port)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var c net.Conn
	if err := l.Client.Do(func() error {
		var err error
		c, err = net.Dial("tcp4", "203.0.113.2:"+port)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client read after the server's close: %v, want EOF", err)
	}
	c.Close()
	ln.Close()
	deadline := time.Now().Add(2 * time.Second)
	for timeWaits(t, l.Server) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no TIME_WAIT socket in the server")
		}
		time.Sleep(time.Millisecond) // polling the kernel's socket table
	}
}

func timeWaits(t *testing.T, n *topology.Node) int {
	t.Helper()
	socks, err := n.Sockets(4)
	if err != nil {
		t.Fatal(err)
	}
	tw := 0
	for _, s := range socks {
		if s.State == netlink.TCP_TIME_WAIT {
			tw++
		}
	}
	return tw
}

// TestTimeWaitDoesNotHoldNamespace: a TIME_WAIT socket holds no reference
// on its network namespace (inet_twsk_alloc does not take one; the
// namespace's exit purges TIME_WAIT sockets), so a namespace left with one
// is freed as soon as it is deleted: the router's end of its veth goes
// with it. Cases that leave TIME_WAIT behind (time-wait-bind,
// port-exhaustion) cannot keep a lab alive.
func TestTimeWaitDoesNotHoldNamespace(t *testing.T) {
	l := labtest.NewLab(t, "tw")
	serverTimeWait(t, l, "9000")
	ns, err := l.Router.NS()
	if err != nil {
		t.Fatal(err)
	}
	updates, done := make(chan netlink.LinkUpdate, 32), make(chan struct{})
	defer close(done)
	if err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{Namespace: &ns}); err != nil {
		t.Fatal(err)
	}
	h, err := l.Router.Handle()
	if err != nil {
		t.Fatal(err)
	}
	link, err := h.LinkByName(topology.LinkName(l.ID, topology.Router, topology.Server))
	if err != nil {
		t.Fatal(err)
	}
	// Deleted with its TIME_WAIT socket, no socket destroyed first.
	if err := l.Server.Delete(); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case u := <-updates:
			if u.Header.Type == unix.RTM_DELLINK && int(u.Index) == link.Attrs().Index {
				return // the server's namespace was freed
			}
		case <-timeout:
			t.Fatal("the server's namespace, left with a TIME_WAIT socket, was not freed within 10 s")
		}
	}
}

// TestDestroySocketsEndsTimeWait: Down's socket destroy (tcp_abort)
// removes TIME_WAIT sockets too.
func TestDestroySocketsEndsTimeWait(t *testing.T) {
	l := labtest.NewLab(t, "tw")
	serverTimeWait(t, l, "9001")
	if err := l.Server.DestroySockets(); err != nil {
		t.Fatal(err)
	}
	if n := timeWaits(t, l.Server); n != 0 {
		t.Fatalf("%d TIME_WAIT sockets left after DestroySockets", n)
	}
}
