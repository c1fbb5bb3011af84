package experiments

import (
	"fmt"
	"time"

	"github.com/tcplab/tcplab/topology"
	"github.com/vishvananda/netlink"
)

// Helpers of the cases about how connections end and how ports are held.

// socketsIn counts the node's TCP sockets in state whose local port is port.
func (r *Run) socketsIn(role string, state uint8, port int) (int, error) {
	socks, err := r.Lab.Node(role).Sockets(r.Cfg.Family)
	n := 0
	for _, s := range socks {
		if s.State == state && int(s.Local.Port()) == port {
			n++
		}
	}
	return n, err
}

// socketWait bounds every wait for a socket state (here, the accept queue
// in listen-overflow, TIME_WAIT in port-exhaustion): they end as soon
// as the kernel reports the state (a few ms), so the bound only matters
// when it never comes. Under software emulation with a score of labs at
// once, a FIN crossing the lab has taken longer than 2 s.
const socketWait = 10 * time.Second

// waitSockets polls the kernel's socket diagnostics until the node has at
// least n sockets in state on the local port (a FIN or an ACK is still
// crossing the lab), and returns how many it has.
func (r *Run) waitSockets(role string, state uint8, port, n int) (int, error) {
	deadline := time.Now().Add(socketWait)
	for {
		got, err := r.socketsIn(role, state, port)
		if err != nil || got >= n || time.Now().After(deadline) {
			return got, err
		}
		time.Sleep(time.Millisecond) // polling the kernel's state, not waiting out a guess
	}
}

// waitNoSockets polls until the node has no socket on the local port but
// listeners (a LAST_ACK waiting for its ACK).
func (r *Run) waitNoSockets(role string, port int) error {
	deadline := time.Now().Add(socketWait)
	for {
		socks, err := r.Lab.Node(role).Sockets(r.Cfg.Family)
		if err != nil {
			return err
		}
		left := ""
		for _, s := range socks {
			if int(s.Local.Port()) == port && s.State != netlink.TCP_LISTEN {
				left = topology.StateName(s.State)
			}
		}
		if left == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still has a socket in %s on port %d", role, left, port)
		}
		time.Sleep(time.Millisecond) // polling the kernel's state, not waiting out a guess
	}
}

// connKey names the connection a packet belongs to, the same both ways.
func connKey(p Pkt) string {
	a, b := fmt.Sprintf("%s:%d", p.Src, p.SrcPort), fmt.Sprintf("%s:%d", p.Dst, p.DstPort)
	if a > b {
		a, b = b, a
	}
	return a + " " + b
}

// seenBefore matches the packets then matches once a packet first matches
// has been seen (packets are matched in time order, point by point).
func seenBefore(first, then func(Pkt) bool) func(Pkt) bool {
	seen := false
	return func(p Pkt) bool {
		if then(p) && seen {
			return true
		}
		seen = seen || first(p)
		return false
	}
}

// afterOnConn matches the packets then matches that come after a packet
// first matches on the same connection.
func afterOnConn(first, then func(Pkt) bool) func(Pkt) bool {
	seen := map[string]bool{}
	return func(p Pkt) bool {
		k := connKey(p)
		if then(p) && seen[k] {
			return true
		}
		if first(p) {
			seen[k] = true
		}
		return false
	}
}

// beforeOnConn matches the packets then matches that come before any
// packet first matches on the same connection.
func beforeOnConn(first, then func(Pkt) bool) func(Pkt) bool {
	seen := map[string]bool{}
	return func(p Pkt) bool {
		k := connKey(p)
		if first(p) {
			seen[k] = true
		}
		return then(p) && !seen[k]
	}
}

// onPort matches TCP segments between the client and the server's port.
func onPort(a addrs, port uint16) func(Pkt) bool {
	return func(p Pkt) bool {
		return p.Proto == "tcp" && ((p.Src == a.client && p.Dst == a.server && p.DstPort == port) ||
			(p.Src == a.server && p.SrcPort == port && p.Dst == a.client))
	}
}

// serverPlays, with the user's own client and the built-in server, has the
// server go on after the accept it is making: the calls are queued to the
// agent, which makes them one at a time as the client's traffic allows,
// and recorded as they return. With the user's own server it does nothing.
func (r *Run) serverPlays(cmds ...Cmd) error {
	if r.Server == nil {
		return nil
	}
	for _, c := range cmds {
		if err := r.Begin(r.Server, c); err != nil {
			return err
		}
	}
	go func() {
		for _, op := range append([]string{"accept"}, opsOf(cmds)...) {
			if _, err := r.Finish(r.Server, op); err != nil {
				return
			}
		}
	}()
	return nil
}

func opsOf(cmds []Cmd) []string {
	var ops []string
	for _, c := range cmds {
		ops = append(ops, c.Op)
	}
	return ops
}
