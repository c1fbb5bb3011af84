package experiments

import (
	"fmt"
	"strconv"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/impair"
	"github.com/tcplab/tcplab/topology"
)

// partition-heal verifies that a partition shorter than the sender's
// give-up time is invisible to the application (the retransmission after
// the heal delivers the data), and that a longer one ends the connection
// on the sending side (ETIMEDOUT) while the silent side keeps it until it
// writes after the heal and draws a RST (ECONNRESET).

// partitionShort is the first partition's length: a deliberate wait,
// between two of the client's retransmissions.
const partitionShort = time.Second

// shortRetries2 is the client's tcp_retries2 during the short partition:
// with the fast mode's 2 the client gives up about 1.9 s after its write,
// and a heal that a loaded machine delays by a second would come too late;
// 5 gives it 12.6 s. The case's own value is back before the long
// partition (the kernel reads the sysctl at each timeout).
const shortRetries2 = 5

// retransmitAfter is when a lone unacknowledged segment written at 0 is
// next sent at or after d: a tail loss probe after about one RTO (2 x SRTT
// + TCP_RTO_MIN), then retransmissions 2, 4, 8... RTOs after the write.
func retransmitAfter(d, rto time.Duration) time.Duration {
	t, step := 2*rto, 2*rto
	for t < d {
		t += step
		step *= 2
	}
	return t
}

// retransmitSpan is retransmitAfter over a span of RTOs.
func retransmitSpan(d time.Duration, rto [2]time.Duration) *Window {
	w := &Window{Min: retransmitAfter(d, rto[0]), Max: retransmitAfter(d, rto[0])}
	for r := rto[0]; r <= rto[1]; r += time.Millisecond {
		g := retransmitAfter(d, r)
		w.Min, w.Max = min(w.Min, g), max(w.Max, g)
	}
	return w
}

// heal ends the partition, marked as a fault: calls after it are timed
// from it.
func (r *Run) heal() error {
	return r.Fault(topology.Router, "partition heals", func() error { return impair.Partition.Clear(r.Lab) })
}

var _ = register(&Case{
	ID: "partition-heal", No: 20,
	Title:   "The path breaks for a while, then heals",
	Summary: "a short partition is invisible (the retransmission after the heal delivers the data); a long one ends the sender's connection with ETIMEDOUT, and the silent server's next write draws a RST",
	Trigger: fmt.Sprintf("the router drops everything between client and server, both ways, for %s while the client's data is unacknowledged, then heals "+
		"(the client's tcp_retries2 raised to %d meanwhile, so that a slow heal cannot outlast it); then again, with the case's tcp_retries2, until the client gives up; "+
		"after the heal the server, which sent nothing, writes", fmtDur(partitionShort), shortRetries2),
	Textbook: "TCP retransmits until its timeout: a partition shorter than that is invisible to the application, whose data arrives late. " +
		"A longer one kills the connection on the side that was sending (ETIMEDOUT), while the silent side keeps it until it writes after the heal and draws a RST (ECONNRESET).",
	Linux: func(t Timing) string {
		return fmt.Sprintf("As the textbook. The first retransmission after the %s partition heals delivers the data; during the second, the client retransmits, backing off, "+
			"until tcp_retries2's time: %s. The server knew nothing of either: its connection is still established, its write is sent, and the client's stack, "+
			"which has no connection any more, answers with a RST: the server's recv fails with ECONNRESET.", fmtDur(partitionShort), t.Basis)
	},
	Course: func(t Timing) []Step {
		rto := rtoBounds(t)
		return append(established(),
			call("client", "send", "ok").within(AtOnce()),
			// The first retransmission after the heal, as it really came: the
			// timer runs from the write, and a loaded machine can delay the
			// write after the fault and make the deliberate wait longer.
			call("server", "recv", "ok").within(retransmitSpan(max(partitionShort, t.FaultLasted-t.WriteDelay), rto).shift(t.WriteDelay).Widen()),
			call("client", "send", "ok").within(AtOnce()),
			call("client", "recv", "ETIMEDOUT").within(afterWrite(t.Window.Widen())),
			call("server", "recv", stillWaiting).within(&Window{Max: 500 * time.Millisecond, FromCall: true}),
			call("server", "send", "ok").within(AtOnce()),
			call("server", "recv", "ECONNRESET").within(AtOnce()),
		)
	},
	Why: "The textbook's account holds, by Linux's mechanisms: the retransmission timer (tcp_retransmit_timer) keeps resending the oldest unacknowledged segment, " +
		"backing off, and the first one after the heal is delivered and acknowledged, which resets the backoff (icsk_backoff); the application sees only the delay. " +
		"The give-up is tcp_retries2's modelled time (retransmits_timed_out in tcp_write_timeout), and tcp_write_err ends the socket without a RST, so the server " +
		"learns nothing. Its write after the heal finds no socket at the client, whose stack answers with a RST (tcp_v4_send_reset, tcp_v6_send_reset), and the " +
		"server's recv reports ECONNRESET (tcp_reset).",
	Settings: func(cfg Config) Settings { return dataSettings(cfg, false) },
	Steps: func(r *Run) error {
		if err := r.establish(); err != nil {
			return err
		}
		retries2 := knob(r.Settings, "net.ipv4.tcp_retries2")
		setRetries2 := func(n int) error {
			if err := r.Lab.Client.Sysctl("net.ipv4.tcp_retries2", strconv.Itoa(n)); err != nil {
				return err
			}
			r.mark(topology.Client, fmt.Sprintf("client sets net.ipv4.tcp_retries2=%d", n), false)
			return nil
		}
		if retries2 < shortRetries2 {
			if err := setRetries2(shortRetries2); err != nil {
				return err
			}
		}
		if err := r.Begin(r.Server, syscallCmd("recv")); err != nil {
			return err
		}
		if err := r.Inject(impair.Partition, r.familyOpts()); err != nil {
			return err
		}
		write, err := r.Call(r.Client, Cmd{Op: "send", Len: 100})
		if err != nil {
			return err
		}
		time.Sleep(partitionShort) // the partition's length: a deliberate part of the case
		if err := r.heal(); err != nil {
			return err
		}
		r.mu.Lock()
		if n := len(r.marks); n >= 2 {
			partition := r.marks[n-2].T
			r.measured.FaultLasted = r.marks[n-1].T.Sub(partition) // partition to heal
			r.measured.WriteDelay = max(0, time.Unix(0, write.Start).Sub(partition))
		}
		r.mu.Unlock()
		if _, err := r.Finish(r.Server, "recv"); err != nil {
			return err
		}
		if retries2 < shortRetries2 {
			if err := setRetries2(retries2); err != nil {
				return err
			}
		}
		if err := r.Inject(impair.Partition, r.familyOpts()); err != nil {
			return err
		}
		if err := r.sendThenRecv(); err != nil {
			return err
		}
		if err := r.heal(); err != nil {
			return err
		}
		for _, c := range []Cmd{{Op: "recv-wait", TimeoutMS: 200}, {Op: "send", Len: 100}, syscallCmd("recv")} {
			if _, err := r.Call(r.Server, c); err != nil {
				return err
			}
		}
		return nil
	},
	Packets: func(t Timing) []PacketCheck {
		a := addrsOf(t.Family)
		return []PacketCheck{
			{Desc: "the client's data and retransmissions during both partitions", Point: PointRouterClient, AfterFault: true,
				Match: and(tcpFromClient(a, t.Port), withData), Min: 7, Max: -1},
			{Desc: "the client's data reaching the server: only the retransmission after the first heal", Point: PointRouterServer, AfterFault: true,
				Match: and(tcpFromClient(a, t.Port), withData), Min: 1, Max: 1},
			{Desc: "the server's acknowledgement of it, reaching the client", Point: PointRouterClient, AfterFault: true,
				Match: and(tcpFromServer(a, t.Port), flagsAre(capture.ACK)), Min: 1, Max: 1},
			{Desc: "the server's write after the second heal, reaching the client", Point: PointRouterClient, AfterFault: true,
				Match: and(tcpFromServer(a, t.Port), withData), Min: 1, Max: 1},
			{Desc: "the client's RST answering it (no RST when the client gave up)", Point: PointRouterServer, AfterFault: true,
				Match: and(tcpFromClient(a, t.Port), hasFlag(capture.RST)), Min: 1, Max: 1},
		}
	},
	Own: &Own{Listener: true, After: func(r *Run) error { return r.Inject(impair.Partition, r.familyOpts()) }},
})
