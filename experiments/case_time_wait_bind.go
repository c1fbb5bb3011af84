package experiments

import (
	"fmt"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/topology"
	"github.com/vishvananda/netlink"
)

// time-wait-bind verifies that a restarted server's bind to a port whose
// old connection is in TIME_WAIT fails with EADDRINUSE unless SO_REUSEADDR
// is set, on Linux only if the old socket had set it too, and that with no
// TIME_WAIT on the server (the client closed first) bind succeeds anyway.
var _ = register(&Case{
	ID: "time-wait-bind", No: 18,
	Title:    "Restarting a server while its old connection is in TIME_WAIT",
	Summary:  "a restarted server's bind meets its old connection in TIME_WAIT: EADDRINUSE unless old and new sockets set SO_REUSEADDR",
	Trigger:  "the server closes first (its end goes to TIME_WAIT) and its process exits; a new server binds the same port without and with SO_REUSEADDR; again with an old server that did not set SO_REUSEADDR; and once where the client closed first",
	Textbook: "UNP 7.5: the side that closes first keeps TIME_WAIT for 2 MSL, and a new server's bind to the port fails with EADDRINUSE unless it sets SO_REUSEADDR, which lets it bind while connections on the port still exist. Where the client closed first, the server has no TIME_WAIT and bind succeeds.",
	Linux: func(Timing) string {
		return "The server's end stays in TIME_WAIT for 60 s (TCP_TIMEWAIT_LEN) and keeps the port: bind without SO_REUSEADDR fails with EADDRINUSE, bind with it succeeds, " +
			"but only because the old listener had set it too: after an old server without SO_REUSEADDR, the new server's bind fails with EADDRINUSE even with SO_REUSEADDR set. " +
			"Where the client closed first, the server's end is gone as soon as its FIN is acknowledged, and bind succeeds without SO_REUSEADDR. A refused bind sends nothing."
	},
	Course: func(Timing) []Step {
		return []Step{
			// The server closes first; old and new servers set SO_REUSEADDR.
			call("server", "listen", "ok"),
			call("client", "connect", "ok"),
			call("server", "accept", "ok"),
			call("server", "close", "ok"),
			call("client", "recv", "eof"),
			call("client", "close", "ok"),
			call("server", "bind", "EADDRINUSE").within(AtOnce()),
			call("server", "bind", "ok").within(AtOnce()),
			call("server", "listen", "ok"),
			// The same after an old server without SO_REUSEADDR.
			call("server", "listen", "ok"),
			call("client", "connect", "ok"),
			call("server", "accept", "ok"),
			call("server", "close", "ok"),
			call("client", "recv", "eof"),
			call("client", "close", "ok"),
			call("server", "bind", "ok").onLinux("EADDRINUSE").within(AtOnce()),
			// The client closes first: no TIME_WAIT on the server.
			call("server", "listen", "ok"),
			call("client", "connect", "ok"),
			call("server", "accept", "ok"),
			call("client", "close", "ok"),
			call("server", "recv", "eof"),
			call("server", "close", "ok"),
			call("server", "bind", "ok").within(AtOnce()),
			call("server", "listen", "ok"),
		}
	},
	Why: "A TIME_WAIT socket keeps its port in the bind hash (inet_twsk_hashdance_schedule) and copies the closed socket's SO_REUSEADDR flag (tw_reuse = sk_reuse, " +
		"in inet_twsk_alloc; an accepted socket inherits it from its listener). bind's conflict check, inet_csk_bind_conflict, lets a socket share the port " +
		"with a TIME_WAIT socket only when both have the flag (inet_bind_conflict: sk->sk_reuse && sk2->sk_reuse && sk2 not listening), where 4.4BSD's " +
		"in_pcbbind asks it of the new socket alone. So on Linux SO_REUSEADDR must be set by the server that leaves TIME_WAIT behind as well as by the one that " +
		"binds after it; every common server sets it on its listener, which is why the difference rarely shows.",
	Settings: keepTimeWait,
	Steps: func(r *Run) error {
		p := r.Port()
		// The server closes first, old and new with SO_REUSEADDR.
		if err := r.timeWaitOn(p, 0, true, true); err != nil {
			return err
		}
		if err := r.restartServer(p); err != nil {
			return err
		}
		if _, err := r.Call(r.Server, r.bindCmd(p, false)); err != nil {
			return err
		}
		if _, err := r.Call(r.Server, r.bindCmd(p, true)); err != nil {
			return err
		}
		if _, err := r.Call(r.Server, syscallCmd("listen-bound")); err != nil {
			return err
		}
		// An old server without SO_REUSEADDR.
		if err := r.timeWaitOn(p+1, 1, false, true); err != nil {
			return err
		}
		if err := r.restartServer(p + 1); err != nil {
			return err
		}
		if _, err := r.Call(r.Server, r.bindCmd(p+1, true)); err != nil {
			return err
		}
		// The client closes first.
		if err := r.timeWaitOn(p+2, 2, true, false); err != nil {
			return err
		}
		if err := r.restartServer(p + 2); err != nil {
			return err
		}
		if _, err := r.Call(r.Server, r.bindCmd(p+2, false)); err != nil {
			return err
		}
		_, err := r.Call(r.Server, syscallCmd("listen-bound"))
		return err
	},
	Packets: func(t Timing) []PacketCheck {
		a := addrsOf(t.Family)
		var out []PacketCheck
		for i, first := range []string{"the server", "the server", "the client"} {
			port := t.Port + uint16(i)
			fin := func(from func(addrs, uint16) func(Pkt) bool) func(Pkt) bool {
				return and(from(a, port), hasFlag(capture.FIN))
			}
			closer, other := fin(tcpFromServer), fin(tcpFromClient)
			if first == "the client" {
				closer, other = other, closer
			}
			out = append(out,
				PacketCheck{Desc: fmt.Sprintf("port %d: %s's FIN first, then the other's (its copies count once)", port, first), Point: PointRouterServer, Match: seenBefore(closer, other), Distinct: bySeq, Min: 1, Max: 1},
				PacketCheck{Desc: fmt.Sprintf("port %d: every segment, its copies once: the handshake, two FINs and their ACKs (the second FIN may carry the first one's), nothing for the binds (a RST answering a FIN copy that came after the end is not counted)", port), Point: PointRouterServer, Match: onPort(a, port), Select: withoutCrossedRST, Distinct: bySegment, Min: 6, Max: 7},
			)
		}
		return append(out, PacketCheck{Desc: "anything on the first port after the old server exited", Point: PointRouterServer, AfterFault: true, Match: onPort(a, t.Port), Max: 0})
	},
	// Own: none. The case is bind's answer to the built-in server's restart.
})

// timeWaitOn opens a connection to port (client slot sock) on a listener
// set up with or without SO_REUSEADDR, and closes it, the server first or
// the client first, until the closing side is in TIME_WAIT and the other
// side's end is gone.
func (r *Run) timeWaitOn(port, sock int, reuse, serverFirst bool) error {
	any := "0.0.0.0"
	if r.Cfg.Family == 6 {
		any = "::"
	}
	l := Cmd{Op: "listen", Addr: any, Port: port}
	if !reuse {
		l.Opts = []Opt{{"SO_REUSEADDR", 0}}
	}
	steps := []struct {
		p *Peer
		c Cmd
	}{
		{r.Server, l},
		{r.Client, Cmd{Op: "connect", Addr: r.ServerAddr(), Port: port, Sock: sock}},
		{r.Server, Cmd{Op: "accept"}},
		{r.Server, Cmd{Op: "close"}},
		{r.Client, Cmd{Op: "recv", Sock: sock}},
		{r.Client, Cmd{Op: "close", Sock: sock}},
	}
	if !serverFirst {
		steps[3], steps[4], steps[5] = steps[5], struct {
			p *Peer
			c Cmd
		}{r.Server, Cmd{Op: "recv"}}, steps[3]
	}
	for _, s := range steps {
		ev, err := r.Call(s.p, s.c)
		if err != nil {
			return err
		}
		if ev.Result != "ok" && ev.Result != "eof" {
			return fmt.Errorf("%s %s: %s", s.p.Role, s.c.Op, ev.Result)
		}
	}
	tw := 0
	if serverFirst {
		tw = 1
	}
	got, err := r.waitSockets(topology.Server, netlink.TCP_TIME_WAIT, port, tw)
	if err != nil {
		return err
	}
	if !serverFirst {
		if err := r.waitNoSockets(topology.Server, port); err != nil {
			return err
		}
	}
	r.countChange(topology.Server, counterWant{fmt.Sprintf("sockets in TIME_WAIT on port %d", port), int64(tw), int64(tw)}, "the close", 0, int64(got))
	return nil
}

// restartServer ends the server process (its input closed, it exits) and
// starts a new one.
func (r *Run) restartServer(port int) error {
	old := r.Server
	old.in.Close()
	select {
	case <-old.Exited():
	case <-time.After(r.limit):
		old.Kill()
		return fmt.Errorf("the server agent did not exit when its input closed")
	}
	r.mark(topology.Server, fmt.Sprintf("the server process exits (its sockets on port %d closed)", port), true)
	p, err := StartPeer(r.Lab.Server)
	if err != nil {
		return err
	}
	r.Server = p
	r.mark(topology.Server, "a new server process starts", false)
	return nil
}

// bindCmd binds the server's wildcard address and port, with or without
// SO_REUSEADDR.
func (r *Run) bindCmd(port int, reuse bool) Cmd {
	any := "0.0.0.0"
	if r.Cfg.Family == 6 {
		any = "::"
	}
	v := 0
	if reuse {
		v = 1
	}
	return Cmd{Op: "bind", Addr: any, Port: port, Opts: []Opt{{"SO_REUSEADDR", v}}}
}
