package experiments

import (
	"fmt"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/impair"
)

// Steps and packet checks shared by the cases with several connections
// (keepalive-crash, user-timeout, nat-idle-timeout, pmtu-blackhole): each
// connection is bound to a local port of its own, so its packets can be
// told apart in the captures.

// familyOpts are a fault's options for the run's family alone, for the
// faults that match no port.
func (r *Run) familyOpts() impair.Options { return impair.Options{Family: r.Cfg.Family} }

// connPort is the client's local port for connection i of a case.
func connPort(i int) uint16 { return uint16(40000 + i) }

// conn is one of the client's connections of a case.
type conn struct {
	Sock int
	Opts []Opt
}

// establishConn opens connection c (the server listening already) and
// has the server accept it into the same slot.
func (r *Run) establishConn(c conn) error {
	ev, err := r.Call(r.Client, Cmd{Op: "connect", Addr: r.ServerAddr(), Port: r.Port(), Sock: c.Sock, Opts: c.Opts, LocalPort: int(connPort(c.Sock))})
	if err != nil {
		return err
	}
	if ev.Result != "ok" {
		return fmt.Errorf("client connect %d: %s", c.Sock, ev.Result)
	}
	ev, err = r.Call(r.Server, Cmd{Op: "accept", Sock: c.Sock})
	if err == nil && ev.Result != "ok" {
		err = fmt.Errorf("server accept %d: %s", c.Sock, ev.Result)
	}
	return err
}

// establishConns has the server listen and opens the connections in order.
func (r *Run) establishConns(cs ...conn) error {
	if err := r.listen(); err != nil {
		return err
	}
	for _, c := range cs {
		if err := r.establishConn(c); err != nil {
			return err
		}
	}
	return nil
}

// establishedN is the course of establishConns with n connections.
func establishedN(n int) []Step {
	s := []Step{call("server", "listen", "ok")}
	for range n {
		s = append(s, call("client", "connect", "ok"), call("server", "accept", "ok"))
	}
	return s
}

// fromClientConn matches the client's segments of connection i.
func fromClientConn(a addrs, port uint16, i int) func(Pkt) bool {
	return func(p Pkt) bool {
		return p.Proto == "tcp" && p.Src == a.client && p.SrcPort == connPort(i) && p.Dst == a.server && p.DstPort == port
	}
}

// toClientConn matches the server's segments of connection i.
func toClientConn(a addrs, port uint16, i int) func(Pkt) bool {
	return func(p Pkt) bool {
		return p.Proto == "tcp" && p.Src == a.server && p.SrcPort == port && p.Dst == a.client && p.DstPort == connPort(i)
	}
}

// keepaliveProbe is a keepalive probe: a bare ACK with no data (Linux
// sends it one byte before the next sequence number expected, so the peer
// must answer).
func keepaliveProbe(p Pkt) bool { return p.Flags == capture.ACK && p.Len == 0 }

// probesOnly keeps, of one connection's bare ACKs, the keepalive probes: a
// probe carries the sequence number one below the next (tcp_xmit_probe_skb
// sends snd_una - 1), so a bare ACK whose sequence number is one above
// another's is an ordinary ACK (a delayed one, or the answer to a
// retransmitted SYN-ACK on a slow machine), not a probe.
func probesOnly(pkts []Pkt) []Pkt {
	below := map[uint32]bool{}
	for _, p := range pkts {
		below[p.Seq] = true
	}
	var out []Pkt
	for _, p := range pkts {
		if !below[p.Seq-1] {
			out = append(out, p)
		}
	}
	return out
}

// probesAt checks keepalive probes against the times the timer predicts,
// counted from the fault: the first within 15% + 300 ms of its time, the
// gaps as schedule allows.
func probesAt(at []time.Duration) func([]time.Time, time.Time) (bool, string) {
	gapsOK := schedule(at)
	return func(ts []time.Time, fault time.Time) (bool, string) {
		if len(ts) == 0 || len(at) == 0 {
			return true, ""
		}
		first := ts[0].Sub(fault)
		if first < at[0]-at[0]/20-100*time.Millisecond || first > at[0]+at[0]*15/100+300*time.Millisecond {
			return false, fmt.Sprintf("%s; the first %s after the fault, the timer predicts %s", gaps(ts), fmtDur(first), fmtDur(at[0]))
		}
		ok, d := gapsOK(ts, fault)
		return ok, fmt.Sprintf("first %s after the fault; %s", fmtDur(first), d)
	}
}

// earlier moves predicted instants d sooner: timers that started before
// the fault they are timed from.
func earlier(at []time.Duration, d time.Duration) []time.Duration {
	out := make([]time.Duration, len(at))
	for i, t := range at {
		out[i] = t - d
	}
	return out
}
