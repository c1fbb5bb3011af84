package experiments

import (
	"fmt"
	"strconv"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/impair"
	"github.com/tcplab/tcplab/topology"
)

// user-timeout verifies that TCP_USER_TIMEOUT ends a connection whose data
// stays unacknowledged when the user timeout passes, not at tcp_retries2's
// time; that it ends nothing on an idle connection; and that with
// keepalive it bounds the probing too.

// The three connections: writing with a user timeout; idle with one;
// idle with one and keepalive, whose probes the user timeout cuts short.
var (
	utWrite     = 1500 * time.Millisecond
	utKeepalive = 2500 * time.Millisecond
	utKa        = keepalive{Idle: time.Second, Intvl: time.Second, Cnt: 9}
	utIdleFor   = time.Second // how long the idle connection is watched
)

const utConnWrite, utConnIdle, utConnKa = 0, 1, 2

func userTimeoutOpt(d time.Duration) Opt { return Opt{"TCP_USER_TIMEOUT", int(d / time.Millisecond)} }

var _ = register(&Case{
	ID: "user-timeout", No: 12,
	Title:   "A deadline on unacknowledged data",
	Summary: "TCP_USER_TIMEOUT ends a write to a dead host at the user timeout, not tcp_retries2's; an idle connection outlives it; with keepalive it cuts the probing short",
	Trigger: "three connections with TCP_USER_TIMEOUT: one writes after the server host crashes silently (1.5 s), one stays idle (1.5 s), " +
		"one stays idle with keepalive (TCP_KEEPIDLE 1 s, TCP_KEEPINTVL 1 s, TCP_KEEPCNT 9; user timeout 2.5 s); tcp_retries2 stays at its default, 15",
	Textbook: "RFC 793's user timeout, RFC 5482's TCP_USER_TIMEOUT: the connection is aborted when data stays unacknowledged longer than the user timeout, whatever the retransmission count says; " +
		"an idle connection has no data outstanding, so nothing times out. Keepalive (UNP 7.5) gives up after its probe count: idle + 9 x interval.",
	Linux: func(t Timing) string {
		return "The writing connection fails with ETIMEDOUT at its user timeout (counted from its first retransmission, a few hundred ms after the write), where tcp_retries2=15 alone would wait about 15.4 min; the idle one is not touched. " +
			"The keepalive connection does not wait for its 9 probes: Linux applies the user timeout to keepalive too, and aborts at the first probe timer past it. " + t.Basis + "."
	},
	Course: func(t Timing) []Step {
		return append(establishedN(3),
			call("client", "send", "ok").within(AtOnce()),
			call("client", "recv", "ETIMEDOUT").book(utWrite).within(afterWrite(t.Window.Widen())),
			call("client", "recv", "ETIMEDOUT").book(utKa.giveUp()).within(Around(utKa.giveUpWithUserTimeout(utKeepalive)-t.IdleBeforeFault)),
			call("client", "recv", stillWaiting).within(&Window{Min: utKa.giveUpWithUserTimeout(utKeepalive) - t.IdleBeforeFault, Max: Around(utKa.giveUpWithUserTimeout(utKeepalive) + utIdleFor).Max}),
		)
	},
	Why: "For unacknowledged data, the user timeout replaces tcp_retries2's modelled time in tcp_write_timeout (retransmits_timed_out with icsk_user_timeout, " +
		"counted from retrans_stamp: the first retransmission by the retransmission timer, about 2 RTOs after the write, since the tail loss probe before it does not set it), and tcp_clamp_rto_to_user_timeout shortens the last retransmission timer " +
		"so that it fires when the user timeout has passed: the error comes the user timeout after the first retransmission, not at a backoff step. The abort sends no RST (tcp_write_err). " +
		"Keepalive is where Linux goes beyond RFC 5482: tcp_keepalive_timer, on a socket with TCP_USER_TIMEOUT, ignores TCP_KEEPCNT and aborts at the first " +
		"expiry where the idle time has reached the user timeout and a probe is unanswered (icsk_probes_out > 0), sending a RST (tcp_send_active_reset). " +
		"An idle connection without keepalive has no timer running at all.",
	Settings: func(cfg Config) Settings {
		ka := utKa.giveUpWithUserTimeout(utKeepalive)
		return Settings{
			Knobs: append([]Knob{{Node: topology.Client, Key: "net.ipv4.tcp_retries2", Value: strconv.Itoa(defaultRetries2)}}, keepaliveKnobs()...),
			predict: func(rto [2]time.Duration) Timing {
				lo, hi := userTimeoutGiveUp(utWrite, rto[0]), userTimeoutGiveUp(utWrite, rto[1])
				return Timing{
					Predicted: ka, Floor: ka + utIdleFor, RTO: rto[1],
					Window: &Window{Min: lo, Max: hi},
					Basis: fmt.Sprintf("the writing connection's user timeout, %s, counts from its first retransmission by the timer, 2 RTOs after the write: ETIMEDOUT %s to %s after it "+
						"for an RTO of %s to %s (tcp_retries2=15 alone stands for %s); the keepalive connection (%s, user timeout %s) "+
						"probes at %s and %s and is aborted at %s, not at idle + 9 x interval = %s; the idle connection is still waiting %s later",
						fmtDur(utWrite), fmtDur(lo), fmtDur(hi), fmtDur(rto[0]), fmtDur(rto[1]), fmtDur(retries2Model(defaultRetries2)), utKa, fmtDur(utKeepalive),
						fmtDur(utKa.probes()[0]), fmtDur(utKa.probes()[1]), fmtDur(ka), fmtDur(utKa.giveUp()), fmtDur(utIdleFor)),
				}
			},
		}
	},
	Steps: func(r *Run) error {
		if err := r.establishConns(conn{utConnIdle, []Opt{userTimeoutOpt(utWrite)}},
			conn{utConnKa, append(utKa.opts(), userTimeoutOpt(utKeepalive))},
			conn{utConnWrite, []Opt{userTimeoutOpt(utWrite)}}); err != nil {
			return err
		}
		if err := r.Inject(impair.Crash, r.opts()); err != nil {
			return err
		}
		if err := r.measureIdle(utConnKa); err != nil { // its keepalive counts from its last segment
			return err
		}
		for _, c := range []Cmd{
			{Op: "send", Len: 100, Sock: utConnWrite},
			{Op: "recv", Sock: utConnWrite},
			{Op: "recv", Sock: utConnKa},
			{Op: "recv-wait", Sock: utConnIdle, TimeoutMS: int(utIdleFor / time.Millisecond)},
		} {
			if _, err := r.Call(r.Client, c); err != nil {
				return err
			}
		}
		return nil
	},
	Packets: func(t Timing) []PacketCheck {
		a := addrsOf(t.Family)
		return []PacketCheck{
			{Desc: "the writing connection's data and its retransmissions, backing off", Point: PointRouterClient, AfterFault: true,
				Match: and(fromClientConn(a, t.Port, utConnWrite), withData), Min: 3, Max: -1, Judge: backingOff(rtoBounds(t))},
			{Desc: "a RST from the writing connection when the user timeout ends it", Point: PointRouterClient, AfterFault: true,
				Match: and(fromClientConn(a, t.Port, utConnWrite), hasFlag(capture.RST)), Max: 0},
			{Desc: "the keepalive connection's probes, cut short by the user timeout", Point: PointRouterClient, AfterFault: true,
				Match: and(fromClientConn(a, t.Port, utConnKa), keepaliveProbe), Select: probesOnly, Min: 2, Max: 2, Judge: probesAt(earlier(utKa.probes()[:2], t.IdleBeforeFault))},
			{Desc: "the keepalive connection's RST when it gives up", Point: PointRouterClient, AfterFault: true,
				Match: and(fromClientConn(a, t.Port, utConnKa), hasFlag(capture.RST)), Min: 1, Max: 1},
			{Desc: "anything on the idle connection after the crash", Point: PointRouterClient, AfterFault: true,
				Match: fromClientConn(a, t.Port, utConnIdle), Max: 0},
		}
	},
	Own: &Own{Listener: true, After: func(r *Run) error { return r.Inject(impair.Crash, r.opts()) }},
})
