// Package lab lets a Go test run its own client and server code against
// tcplab's faults: it builds a client/router/server network-namespace lab
// for the test, runs functions and processes inside its nodes, applies any
// fault of tcplab's catalogue (a silent host crash, a reboot, the router
// dropping or rejecting segments...), and captures the packets on the
// router's interfaces.
//
// A socket belongs to the network namespace of the thread that created it,
// for its whole life. Node.Do, Node.Listen and Node.DialContext create
// sockets inside a node, after which they can be used from any goroutine:
// the standard library's HTTP client and server work unchanged in the lab.
//
//	func TestGivesUpAfterCrash(t *testing.T) {
//		l := lab.New(t) // removed when the test ends
//		ln, err := l.Server.Listen("tcp", ":8080")
//		if err != nil {
//			t.Fatal(err)
//		}
//		defer ln.Close()
//		go http.Serve(ln, myHandler)
//		client := &http.Client{
//			Timeout:   2 * time.Second,
//			Transport: &http.Transport{DialContext: l.Client.DialContext},
//		}
//		resp, err := client.Get("http://203.0.113.2:8080/events")
//		if err != nil {
//			t.Fatal(err)
//		}
//		defer resp.Body.Close()
//		if err := l.Fault("crash", impair.Options{}); err != nil {
//			t.Fatal(err)
//		}
//		start := time.Now()
//		if _, err := io.ReadAll(resp.Body); err == nil || time.Since(start) > 3*time.Second {
//			t.Errorf("reading from a crashed server: %v after %v", err, time.Since(start))
//		}
//	}
//
// The examples run as tests (go test -run Example ./lab, as root): a
// client with no timeout still waiting after the crash, and one with
// http.Client.Timeout or TCP keepalive giving up in time.
//
// The lab's addresses come from the documentation ranges (client
// 198.51.100.2 and 2001:db8:c::2, server 203.0.113.2 and 2001:db8:5::2,
// with the router between); nothing in it is joined to the host's network,
// and the host's own network namespace is never changed.
//
// Building a lab needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN): run such
// tests with `go test -exec sudo`, or as root. New fails the test without
// them; call Available first to skip instead. A test binary killed before
// its cleanup ran leaves its lab behind: `tcplab clean` removes it.
//
// This package is for tests of your own programs. (The module's
// internal/labtest package holds helpers for tcplab's own tests and is not
// importable from outside.)
package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/impair"
	"github.com/tcplab/tcplab/topology"
)

// Lab is a running client/router/server lab.
type Lab struct {
	// ID names the lab: its namespaces are tcplab-ID-client, -router and
	// -server (visible to `ip netns`).
	ID string
	// The nodes: the client and the server, each joined to the router by
	// its own link.
	Client, Router, Server *Node

	topo      *topology.Lab
	mu        sync.Mutex
	captures  []*capture.Capture
	processes []*exec.Cmd
	closeOnce sync.Once
	closeErr  error
}

// Node is one host of the lab: a network namespace.
type Node struct {
	// Role is client, router or server.
	Role string
	lab  *Lab
	n    *topology.Node
}

// Available tells whether this process can build labs: it needs root.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("a tcplab lab needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) to create network namespaces: run the test as root or with go test -exec sudo")
	}
	return nil
}

// New builds a lab for the test and removes it when the test and its
// subtests have ended (t.Cleanup). It fails the test if the lab cannot be
// built; see Available.
func New(t testing.TB) *Lab {
	t.Helper()
	if err := Available(); err != nil {
		t.Fatal(err)
	}
	l, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	return l
}

// Build builds a lab; Close removes it. Outside tests (and in examples)
// use it where New cannot be.
func Build() (*Lab, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	var topo *topology.Lab
	var err error
	for range 5 {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		if topo, err = topology.New(hex.EncodeToString(b)); err != nil {
			return nil, err
		}
		if err = topo.Up(topology.KindRun); !errors.Is(err, topology.ErrExists) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("build a lab: %w", err)
	}
	l := &Lab{ID: topo.ID, topo: topo}
	l.Client = &Node{Role: topology.Client, lab: l, n: topo.Client}
	l.Router = &Node{Role: topology.Router, lab: l, n: topo.Router}
	l.Server = &Node{Role: topology.Server, lab: l, n: topo.Server}
	return l, nil
}

// Close removes the lab: it stops the captures still running, kills every
// process in its nodes and removes the namespaces with their links. Close
// the sockets you made in the lab first: a socket keeps its namespace
// alive. Close is idempotent.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		caps, procs := l.captures, l.processes
		l.captures, l.processes = nil, nil
		l.mu.Unlock()
		var errs []error
		for _, c := range caps {
			if _, err := c.Stop(); err != nil {
				errs = append(errs, err)
			}
		}
		for _, p := range procs {
			if p.ProcessState == nil {
				_ = p.Process.Kill()
			}
		}
		errs = append(errs, l.topo.Down())
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

// Fault applies the fault of tcplab's catalogue with that name (see
// `tcplab fault --help` and impair.Names): "drop", "reject-host",
// "reject-net", "reject-admin", "reject-port", "link-down", "link-up",
// "kill", "crash", "crash-reported", "reboot", "shutdown". The zero
// Options apply it to both address families and every port.
//
// A reboot waits until the kernel has freed the server's namespace: a
// socket the test holds there (a listener from Server.Listen) would keep it
// alive, so run a server that must survive a reboot as a process
// (Node.Start), which the reboot kills as it would on a real host.
func (l *Lab) Fault(name string, o impair.Options) error {
	f, err := impair.Lookup(name)
	if err != nil {
		return err
	}
	_, err = l.Apply(f, o)
	return err
}

// Apply applies a fault (a catalogue entry, or one made with impair.Reject)
// and returns what it did.
func (l *Lab) Apply(f impair.Fault, o impair.Options) (impair.Effect, error) {
	return f.Apply(l.topo, o)
}

// ClearFaults removes every fault that can be undone: the router's rules,
// and the server's link brought back up.
func (l *Lab) ClearFaults() error { return impair.ClearAll(l.topo) }

// Topology is the lab as tcplab's topology package sees it, for what this
// package does not offer.
func (l *Lab) Topology() *topology.Lab { return l.topo }

// Addr is the node's IPv4 address (the router's on the client's side).
func (n *Node) Addr() netip.Addr { return addrOf(n.Role, 4) }

// Addr6 is the node's IPv6 address (the router's on the client's side).
func (n *Node) Addr6() netip.Addr { return addrOf(n.Role, 6) }

func addrOf(role string, family int) netip.Addr {
	a, _ := netip.AddrFromSlice(topology.Addr(role, family))
	return a.Unmap()
}

// Do runs fn inside the node: on a goroutine locked to an OS thread that
// has been switched into the node's network namespace, and switched back
// after fn returns (a thread that cannot be switched back is discarded).
// Sockets fn creates belong to the node for their whole life and can be
// used anywhere after Do returns. Goroutines fn starts do not run inside
// the node: create sockets in fn itself.
func (n *Node) Do(fn func() error) error { return n.n.Do(fn) }

// Listen listens inside the node, as net.Listen does: ":8080" listens on
// all the node's addresses. Connections accepted from the listener belong
// to the node too.
func (n *Node) Listen(network, address string) (net.Listener, error) {
	var ln net.Listener
	err := n.Do(func() error {
		var err error
		ln, err = net.Listen(network, address)
		return err
	})
	return ln, err
}

// DialContext dials from inside the node with a zero net.Dialer (Go's
// default keepalive: probes after 15 s idle). Its signature is that of
// http.Transport.DialContext. The address must be an IP address and port:
// there is no name service in the lab.
func (n *Node) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return n.Dialer(&net.Dialer{})(ctx, network, address)
}

// Dialer returns a function that dials from inside the node with d: its
// Timeout, KeepAlive, KeepAliveConfig and Control (for socket options such
// as TCP_USER_TIMEOUT) apply. The address must be an IP address and port.
func (n *Node) Dialer(d *net.Dialer) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		// A name would be resolved, and a dual-stack dial raced, on other
		// goroutines: outside the node. One literal address is dialled on
		// this goroutine alone.
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return nil, fmt.Errorf("lab: dial %s: %w", address, err)
		}
		if _, err := netip.ParseAddr(host); err != nil {
			return nil, fmt.Errorf("lab: dial %s: give an IP address, the lab has no name service", address)
		}
		var c net.Conn
		err = n.Do(func() error {
			var err error
			c, err = d.DialContext(ctx, network, address)
			return err
		})
		return c, err
	}
}

// Start starts cmd inside the node: the process and its children live in
// the node's namespace. A process still running when the lab is closed is
// killed; wait for it yourself (cmd.Wait) to collect its status.
func (n *Node) Start(cmd *exec.Cmd) error {
	if err := n.n.Start(cmd); err != nil {
		return err
	}
	n.lab.mu.Lock()
	n.lab.processes = append(n.lab.processes, cmd)
	n.lab.mu.Unlock()
	return nil
}

// Sysctl sets a networking sysctl inside the node, in its dotted form:
// n.Sysctl("net.ipv4.tcp_retries2", "2") makes the node's connections give
// up on unacknowledged data after about 3 s instead of about 15 minutes.
func (n *Node) Sysctl(key, value string) error { return n.n.Sysctl(key, value) }

// Capture starts capturing on the node's interface toward peer: on the
// router toward the client or the server, where every packet between the
// hosts passes, or on the client or the server toward the router. Stop the
// capture to collect the frames (capture.Decode reads one); the lab stops
// it when it is closed. After a reboot, the server's link is a new one:
// start a new capture on it.
func (n *Node) Capture(peer *Node) (*capture.Capture, error) {
	if (n.Role == topology.Router) == (peer.Role == topology.Router) {
		return nil, fmt.Errorf("lab: no link between %s and %s: each host is joined to the router", n.Role, peer.Role)
	}
	point := n.Role
	if n.Role == topology.Router {
		point = n.Role + "-" + peer.Role
	}
	c, err := capture.Start(n.n.Do, topology.LinkName(n.lab.ID, n.Role, peer.Role), point)
	if err != nil {
		return nil, err
	}
	n.lab.mu.Lock()
	n.lab.captures = append(n.lab.captures, c)
	n.lab.mu.Unlock()
	return c, nil
}
