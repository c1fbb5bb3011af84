package experiments

import (
	"fmt"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/topology"
	"github.com/vishvananda/netlink"
)

// The client's ephemeral port range in port-exhaustion: two ports.
const exhaustLow, exhaustHigh = 40000, 40001

// port-exhaustion verifies that with every ephemeral port in use towards a
// server address and port, connect fails with EADDRNOTAVAIL without sending
// anything, whether the ports are held by open connections or by TIME_WAIT,
// and that a connection to another port still gets one.
var _ = register(&Case{
	ID: "port-exhaustion", No: 19,
	Title:    "The client runs out of ephemeral ports",
	Summary:  "two ephemeral ports, open or in TIME_WAIT: a third connect to the same server port fails with EADDRNOTAVAIL, sending nothing",
	Trigger:  fmt.Sprintf("the client's net.ipv4.ip_local_port_range is %d %d; two connections open, a third connect (and a bind to port 0); the client closes both (TIME_WAIT) and connects again; then a connect to another server port", exhaustLow, exhaustHigh),
	Textbook: "Each connection to one server address and port needs its own local port, and TIME_WAIT holds a port for 2 MSL after the active close; with no port free, connect fails with EADDRNOTAVAIL.",
	Linux: func(Timing) string {
		return "As the textbook for connect: __inet_hash_connect finds no port whose connection to this server address and port would be unique and fails with EADDRNOTAVAIL, " +
			"at once and without a packet, as long as the ports are open and again once they are in TIME_WAIT (net.ipv4.tcp_tw_reuse=2, the default, reuses a TIME_WAIT port only for loopback). " +
			"A bind to port 0 fails too, with EADDRINUSE. The same two ports still serve a connection to another server port."
	},
	Course: func(Timing) []Step {
		return []Step{
			call("server", "listen", "ok"),
			call("client", "connect", "ok"),
			call("server", "accept", "ok"),
			call("client", "connect", "ok"),
			call("server", "accept", "ok"),
			call("client", "connect", "EADDRNOTAVAIL").within(AtOnce()),
			linuxOnly("client", "bind", "EADDRINUSE").within(AtOnce()),
			// The client closes both: TIME_WAIT holds the ports.
			call("client", "close", "ok"),
			call("client", "close", "ok"),
			call("server", "recv", "eof"),
			call("server", "close", "ok"),
			call("server", "recv", "eof"),
			call("server", "close", "ok"),
			call("client", "connect", "EADDRNOTAVAIL").within(AtOnce()),
			// Another server port.
			call("server", "listen", "ok"),
			call("client", "connect", "ok"),
		}
	},
	Why: "The textbook names connect's error only. A bind to port 0 looks for a port in the range no other socket is bound to (inet_csk_get_port, " +
		"inet_csk_find_open_port), finds none, and returns its default error, EADDRINUSE, not EADDRNOTAVAIL: the bind conflict check " +
		"(inet_csk_bind_conflict) does not know the connection's destination, while connect's port search (__inet_hash_connect) asks only " +
		"whether the four-tuple would be unique (__inet_check_established), which is why a connection to another server port can share the ports.",
	Settings: func(Config) Settings {
		return Settings{
			Knobs: []Knob{
				{Node: topology.Client, Key: "net.ipv4.ip_local_port_range", Value: fmt.Sprintf("%d %d", exhaustLow, exhaustHigh)},
				{Node: topology.Client, Key: "net.ipv4.tcp_tw_reuse", Value: "2"},
			},
			Basis: "no kernel timer involved: the refused connects fail at once",
		}
	},
	Steps: func(r *Run) error {
		if err := r.listen(); err != nil {
			return err
		}
		to := func(port, sock int) Cmd { return Cmd{Op: "connect", Addr: r.ServerAddr(), Port: port, Sock: sock} }
		for sock := range 2 {
			if ev, err := r.Call(r.Client, to(r.Port(), sock)); err != nil || ev.Result != "ok" {
				return fmt.Errorf("client connect %d: %s %v", sock, ev.Result, err)
			}
			if _, err := r.Call(r.Server, Cmd{Op: "accept", Sock: sock}); err != nil {
				return err
			}
		}
		r.mark(topology.Client, fmt.Sprintf("both ports, %d and %d, in use by open connections", exhaustLow, exhaustHigh), true)
		if _, err := r.Call(r.Client, to(r.Port(), 2)); err != nil {
			return err
		}
		any := "0.0.0.0"
		if r.Cfg.Family == 6 {
			any = "::"
		}
		if _, err := r.Call(r.Client, Cmd{Op: "bind", Addr: any, Port: 0}); err != nil {
			return err
		}
		for sock := range 2 {
			if _, err := r.Call(r.Client, Cmd{Op: "close", Sock: sock}); err != nil {
				return err
			}
		}
		for sock := range 2 {
			if _, err := r.Call(r.Server, Cmd{Op: "recv", Sock: sock}); err != nil {
				return err
			}
			if _, err := r.Call(r.Server, Cmd{Op: "close", Sock: sock}); err != nil {
				return err
			}
		}
		tw, err := r.clientTimeWait(2)
		if err != nil {
			return err
		}
		r.countChange(topology.Client, counterWant{fmt.Sprintf("sockets in TIME_WAIT towards port %d", r.Port()), 2, 2}, "the client's two closes", 0, int64(tw))
		r.mark(topology.Client, "both ports in TIME_WAIT", true)
		if _, err := r.Call(r.Client, to(r.Port(), 2)); err != nil {
			return err
		}
		if _, err := r.Call(r.Server, Cmd{Op: "listen", Addr: any, Port: r.Port() + 1}); err != nil {
			return err
		}
		_, err = r.Call(r.Client, to(r.Port()+1, 3))
		return err
	},
	Packets: func(t Timing) []PacketCheck {
		a := addrsOf(t.Family)
		syn := flagsAre(capture.SYN)
		return []PacketCheck{
			{Desc: "the client's SYNs to the server port: two, none for the refused connects", Point: PointRouterClient, Match: and(tcpFromClient(a, t.Port), syn), Min: 2, Max: 2},
			{Desc: "the client's SYN to the other server port", Point: PointRouterClient, Match: and(tcpFromClient(a, t.Port+1), syn), Min: 1, Max: 1},
			{Desc: fmt.Sprintf("a SYN from a port outside %d-%d", exhaustLow, exhaustHigh), Point: PointRouterClient,
				Match: func(p Pkt) bool {
					return p.Proto == "tcp" && p.Src == a.client && p.Flags == capture.SYN && (p.SrcPort < exhaustLow || p.SrcPort > exhaustHigh)
				}, Max: 0},
			{Desc: "a SYN from the client after the ports ran out, but the one to the other port", Point: PointRouterClient, AfterFault: true,
				Match: beforeOnConn(and(tcpFromClient(a, t.Port+1), syn), func(p Pkt) bool { return p.Proto == "tcp" && p.Src == a.client && p.Flags.Has(capture.SYN) }), Max: 0},
		}
	},
	// Own: the client's narrowed port range is the fault, in force before
	// your client starts: see how it behaves when connect runs out of ports.
	Own: &Own{Listener: true},
})

// clientTimeWait waits until the client has n sockets in TIME_WAIT towards
// the server's port, and returns how many it has.
func (r *Run) clientTimeWait(n int) (int, error) {
	deadline := time.Now().Add(socketWait)
	for {
		socks, err := r.Lab.Client.Sockets(r.Cfg.Family)
		if err != nil {
			return 0, err
		}
		got := 0
		for _, s := range socks {
			if s.State == netlink.TCP_TIME_WAIT && int(s.Remote.Port()) == r.Port() {
				got++
			}
		}
		if got >= n || time.Now().After(deadline) {
			return got, nil
		}
		time.Sleep(time.Millisecond) // polling the kernel's state, not waiting out a guess
	}
}
