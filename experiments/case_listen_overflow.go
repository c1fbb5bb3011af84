package experiments

import (
	"fmt"
	"strconv"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/topology"
)

// listen-overflow verifies what a full accept queue does on Linux: a SYN
// that finds it full is dropped (the client retransmits, then times out);
// a handshake begun before it filled completes on the client, whose connect
// succeeds, while the server drops the completing ACK and retransmits its
// SYN-ACK; with net.ipv4.tcp_abort_on_overflow=1 that ACK draws a RST, but
// the SYN is still dropped.
var _ = register(&Case{
	ID: "listen-overflow", No: 15,
	Title:    "The listener's accept queue is full",
	Summary:  "the accept queue is full: SYNs are dropped, and a handshake completing into it leaves the client connected to nothing",
	Trigger:  "the server listens with backlog 1 and never accepts; its listener queues a connection when its first data arrives (TCP_DEFER_ACCEPT, 1 s), so one handshake can stay open while others fill the queue, as with clients connecting at once; the client opens four connections and writes on each; then again with net.ipv4.tcp_abort_on_overflow=1",
	Textbook: "UNP 4.5: when the listener's queues are full, BSD ignores the SYN, sending no RST (a RST would make the client give up on what may be a passing condition): the client retransmits its SYN and, if the queue never drains, connect times out. A connection whose handshake completed is queued for accept.",
	Linux: func(t Timing) string {
		return fmt.Sprintf("The accept queue is full only above the backlog (sk_acceptq_is_full: more than 1 here), so two connections enter it. A SYN that then finds it full is dropped "+
			"(tcp_conn_request, TcpExt:ListenOverflows and ListenDrops): connect retransmits and fails with ETIMEDOUT (%s). A handshake whose SYN came while there was room "+
			"completes on the client, so its connect and send succeed, but the server drops the completing segment (tcp_check_req finds the queue full): the client "+
			"retransmits its data, the server its SYN-ACK, each answer dropped again. With net.ipv4.tcp_abort_on_overflow=1 that segment draws a RST and the "+
			"client's recv fails with ECONNRESET, but a SYN finding the queue full is still dropped silently.", t.Basis)
	},
	Course: func(t Timing) []Step {
		var s []Step
		for _, abort := range []bool{false, true} {
			s = append(s,
				call("server", "listen", "ok"),
				call("client", "connect", "ok"),
				call("client", "send", "ok"),
				call("client", "connect", "ok"),
				call("client", "connect", "ok"),
				call("client", "send", "ok"),
				call("client", "send", "ok"),
			)
			if abort {
				s = append(s, linuxOnly("client", "recv", "ECONNRESET").within(AtOnce()))
			}
			s = append(s, call("client", "connect", "ETIMEDOUT").book(75*time.Second).within(afterCall(Around(t.Predicted))))
			if !abort {
				s = append(s, call("client", "close(linger=0)", "ok"))
			}
		}
		return s
	},
	Why: "Linux checks the accept queue twice. When the SYN comes (tcp_conn_request): full, the SYN is dropped, whatever tcp_abort_on_overflow says. " +
		"When the handshake's last segment comes (tcp_check_req → tcp_v4_syn_recv_sock): full, the new socket is not made (ListenOverflows); by default " +
		"the request is kept and marked acked, so the server goes on retransmitting its SYN-ACK (reqsk_timer_handler, net.ipv4.tcp_synack_retries) in case " +
		"the queue drains, while the client, ESTABLISHED since the SYN-ACK, has seen connect and send succeed and retransmits data nobody takes. " +
		"BSD, which counts incomplete and completed connections against one limit, never accepts a SYN it could not queue. " +
		"After tcp_synack_retries (5: 63 s) the server gives the request up, and the client's next retransmission reaches a bare listener, which answers it " +
		"with a RST (tcp_rcv_state_process in LISTEN; --kernel-defaults shows it). net.ipv4.tcp_abort_on_overflow=1 (listen_overflow in tcp_check_req) " +
		"resets such a connection at once instead (TcpExt:EmbryonicRsts). The backlog is counted differently too: BSD lets the two queues together hold " +
		"1.5 times the backlog (UNP figure 4.10); Linux lets backlog + 1 connections wait for accept (sk_acceptq_is_full compares with >), and as many " +
		"requests wait in its handshake queue before, with net.ipv4.tcp_syncookies, further SYNs are answered with cookies (inet_csk_reqsk_queue_is_full).",
	Settings: func(cfg Config) Settings {
		n := 1
		if cfg.KernelDefaults {
			n = defaultSynRetries
		}
		knobs := []Knob{{Node: topology.Client, Key: "net.ipv4.tcp_syn_retries", Value: strconv.Itoa(n)}}
		linear := synLinearTimeouts()
		if linear >= 0 {
			knobs = append(knobs, Knob{Node: topology.Client, Key: "net.ipv4.tcp_syn_linear_timeouts", Value: strconv.Itoa(linear)})
		}
		knobs = append(knobs, Knob{Node: topology.Server, Key: "net.ipv4.tcp_abort_on_overflow", Value: "0"})
		syns, giveUp := synSchedule(n, max(linear, 0))
		return Settings{Knobs: knobs, Predicted: giveUp, Floor: 2 * giveUp,
			Basis: fmt.Sprintf("%d SYNs, the last at %s, then ETIMEDOUT at %s", len(syns), fmtDur(syns[len(syns)-1]), fmtDur(giveUp))}
	},
	Steps: func(r *Run) error {
		if err := r.overflow(r.Port(), 0, false); err != nil {
			return err
		}
		if err := r.Lab.Server.Sysctl("net.ipv4.tcp_abort_on_overflow", "1"); err != nil {
			return err
		}
		r.mark(topology.Server, "net.ipv4.tcp_abort_on_overflow=1", false)
		return r.overflow(r.Port()+1, 4, true)
	},
	Packets: func(t Timing) []PacketCheck {
		a := addrsOf(t.Family)
		n := knob(t.Settings, "net.ipv4.tcp_syn_retries")
		syns, _ := synSchedule(n, max(knob(t.Settings, "net.ipv4.tcp_syn_linear_timeouts"), 0))
		synack := flagsAre(capture.SYN | capture.ACK)
		var out []PacketCheck
		for _, abort := range []bool{false, true} {
			port, v := t.Port, "backlog full"
			if abort {
				port, v = t.Port+1, "tcp_abort_on_overflow=1"
			}
			// With the kernel's timers the round lasts past the server's last
			// SYN-ACK retransmission (tcp_synack_retries=5: the request is
			// dropped after 63 s), and the client's next data retransmission
			// then reaches a bare listener, which answers it with a RST.
			rsts, why := b2i(abort), "no RST from the server but for the overflowing handshake"
			if !abort && n == defaultSynRetries {
				rsts, why = 1, "one RST from the server, once it has given the open handshake up"
			}
			out = append(out,
				PacketCheck{Desc: fmt.Sprintf("%s: the client's SYNs: one for each of three connections, %d for the fourth", v, len(syns)), Point: PointRouterClient,
					Match: and(tcpFromClient(a, port), flagsAre(capture.SYN)), Min: 3 + len(syns), Max: 3 + len(syns)},
				PacketCheck{Desc: v + ": no answer to the fourth connection's SYNs, and " + why, Point: PointRouterServer,
					Match: and(tcpFromServer(a, port), func(p Pkt) bool { return p.Flags.Has(capture.RST) }), Min: rsts, Max: rsts},
			)
			if !abort {
				out = append(out,
					PacketCheck{Desc: v + ": the server's SYN-ACKs, three, then retransmitted on the handshake the full queue did not take", Point: PointRouterServer,
						Match: and(tcpFromServer(a, port), synack), Min: 4, Max: 3 + 5},
					PacketCheck{Desc: v + ": the client's data: once on each of three connections, then retransmitted on that one", Point: PointRouterClient,
						Match: and(tcpFromClient(a, port), withData), Min: 4, Max: -1},
				)
			} else {
				out = append(out,
					PacketCheck{Desc: v + ": the server's SYN-ACKs, one for each of three connections", Point: PointRouterServer,
						Match: and(tcpFromServer(a, port), synack), Min: 3, Max: 3},
					PacketCheck{Desc: v + ": the server's RST answers the client's data", Point: PointRouterServer,
						Match: afterOnConn(and(tcpFromClient(a, port), withData), and(tcpFromServer(a, port), hasFlag(capture.RST))), Min: 1, Max: 1},
				)
			}
		}
		return out
	},
	// Own: none. Overflowing the queue needs a listener that never accepts
	// and handshakes held open in a set order.
})

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// overflow is one round of listen-overflow on port: connections in client
// slots from first on, the third held open by the listener's deferred
// accept until the queue has filled.
func (r *Run) overflow(port, first int, abort bool) error {
	any := "0.0.0.0"
	if r.Cfg.Family == 6 {
		any = "::"
	}
	if _, err := r.Call(r.Server, Cmd{Op: "listen", Addr: any, Port: port, Backlog: 1, Opts: []Opt{{"TCP_DEFER_ACCEPT", 1}}}); err != nil {
		return err
	}
	connect := func(s int) Cmd { return Cmd{Op: "connect", Addr: r.ServerAddr(), Port: port, Sock: first + s} }
	send := func(s int) Cmd { return Cmd{Op: "send", Len: 100, Sock: first + s} }
	for _, c := range []Cmd{connect(0), send(0), connect(1), connect(2), send(2)} {
		ev, err := r.Call(r.Client, c)
		if err != nil {
			return err
		}
		if ev.Result != "ok" {
			return fmt.Errorf("client %s on connection %d: %s", c.Op, c.Sock, ev.Result)
		}
	}
	// The queue holds two connections now (the backlog is exceeded only
	// above 1): read it from the kernel's socket diagnostics.
	queued, err := r.acceptQueue(port, 2)
	if err != nil {
		return err
	}
	r.countChange(topology.Server, counterWant{fmt.Sprintf("connections in port %d's accept queue", port), 2, 2}, "three handshakes, two completed by data", 0, int64(queued))
	// Each segment the full queue turns away counts once in both: the open
	// handshake's data (tcp_v4_syn_recv_sock, exit_overflow), then each of
	// the fourth connection's SYNs (tcp_conn_request). Without
	// tcp_abort_on_overflow the data's retransmissions add more.
	syns, _ := synSchedule(knob(r.Settings, "net.ipv4.tcp_syn_retries"), max(knob(r.Settings, "net.ipv4.tcp_syn_linear_timeouts"), 0))
	least := int64(1 + len(syns))
	wants := []counterWant{{"TcpExt:ListenOverflows", least, -1}, {"TcpExt:ListenDrops", least, -1}}
	during := "the data of the open handshake and the fourth connection's SYNs"
	if abort {
		wants = append(wants, counterWant{"TcpExt:EmbryonicRsts", 1, 1})
	}
	done, err := r.watchCounters(topology.Server, during, wants...)
	if err != nil {
		return err
	}
	r.mark(topology.Server, fmt.Sprintf("accept queue full (%d queued, backlog 1); the client writes on the connection still in its handshake", queued), true)
	if _, err := r.Call(r.Client, send(1)); err != nil {
		return err
	}
	if abort {
		if _, err := r.Call(r.Client, Cmd{Op: "recv", Sock: first + 1}); err != nil {
			return err
		}
	}
	if _, err := r.Call(r.Client, connect(3)); err != nil {
		return err
	}
	if err := done(); err != nil {
		return err
	}
	if !abort {
		// End the handshake that is still retransmitting before the knob
		// changes, so it cannot be reset under the next round's setting.
		_, err = r.Call(r.Client, Cmd{Op: "close-rst", Sock: first + 1})
	}
	return err
}

// acceptQueue waits until the listener on port has n connections waiting
// for accept (the last data may still be crossing the lab), and returns how
// many it has.
func (r *Run) acceptQueue(port, n int) (int, error) {
	deadline := time.Now().Add(socketWait)
	for {
		st, err := socketState(r.Lab.Server, r.Cfg.Family, port, "0.0.0.0:0")
		if err != nil || int(st.acceptQueue) >= n || time.Now().After(deadline) {
			return int(st.acceptQueue), err
		}
		time.Sleep(time.Millisecond) // polling the kernel's state, not waiting out a guess
	}
}
