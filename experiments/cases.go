package experiments

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tcplab/tcplab/impair"
	"github.com/tcplab/tcplab/topology"
)

// unreachableCodes are the router's answers for "the host is unreachable"
// and "the network is unreachable" in the run's family: ICMP host- and
// net-unreachable, or ICMPv6 address-unreachable and no-route.
func (r *Run) unreachableCodes() []uint8 {
	if r.Cfg.Family == 6 {
		return []uint8{impair.AddrUnreachable6, impair.NoRoute6}
	}
	return []uint8{impair.HostUnreachable, impair.NetUnreachable}
}

// icmpName names an ICMP destination-unreachable code of the run's family.
func (r *Run) icmpName(code uint8) string {
	if r.Cfg.Family == 6 {
		return "ICMPv6 " + impair.ICMP6CodeName(code)
	}
	return "ICMP " + impair.ICMPCodeName(code)
}

// Kernel defaults of the timers the cases shorten.
const (
	defaultSynRetries = 6  // net.ipv4.tcp_syn_retries
	defaultRetries2   = 15 // net.ipv4.tcp_retries2
	fastSynRetries    = 2
	fastRetries2      = 2
)

// synSchedule simulates an unanswered connect (tcp_write_timeout in
// net/ipv4/tcp_timer.c): the SYN's timeout starts at 1 s
// (TCP_TIMEOUT_INIT, RFC 6298); the first `linear` retransmissions keep it
// at 1 s (net.ipv4.tcp_syn_linear_timeouts on recent kernels; 0 where the
// kernel lacks it), after which it doubles. The attempt ends at the first timer
// expiry where n + linear retransmissions have been made or the time n
// doubling timeouts would take, 2^(n+1)-1 s, has passed. It returns the
// SYNs' send times and the give-up time.
func synSchedule(n, linear int) (syns []time.Duration, giveUp time.Duration) {
	model := time.Duration((1<<(n+1))-1) * time.Second
	t, rto, retrans := time.Duration(0), time.Second, 0
	syns = []time.Duration{0}
	for {
		t += rto
		if retrans >= n+linear || t >= model {
			return syns, t
		}
		retrans++
		syns = append(syns, t)
		if retrans > linear {
			rto *= 2
		}
	}
}

// synLinearTimeouts is the kernel's default for
// net.ipv4.tcp_syn_linear_timeouts, or -1 where the kernel predates it.
func synLinearTimeouts() int {
	if _, err := os.Stat("/proc/sys/net/ipv4/tcp_syn_linear_timeouts"); err != nil {
		return -1
	}
	return 4
}

// retries2Model is the time net.ipv4.tcp_retries2 = n stands for: Linux
// counts time, not retransmissions, modelled as n+1 timeouts starting at
// TCP_RTO_MIN (200 ms) and doubling up to TCP_RTO_MAX (120 s)
// (tcp_model_timeout in net/ipv4/tcp_timer.c).
func retries2Model(n int) time.Duration {
	const rtoMin, rtoMax = 200 * time.Millisecond, 120 * time.Second
	const thresh = 9 // ilog2(TCP_RTO_MAX / TCP_RTO_MIN)
	if n <= thresh {
		return time.Duration((2<<n)-1) * rtoMin
	}
	return time.Duration((2<<thresh)-1)*rtoMin + time.Duration(n-thresh)*rtoMax
}

// giveUp is when an established connection whose segments go unanswered is
// abandoned: the deadline is only checked when the retransmission timer
// fires (tcp_write_timeout), and it counts from the first retransmission
// (retrans_stamp), so the error comes at the first expiry at least
// retries2Model(n) after it. Expiries double from rto up to 120 s, or with
// revert (RFC 6069: each ICMP unreachable undoes one backoff step) come
// every rto.
//
// A single unacknowledged segment is first probed by a tail loss probe
// (RFC 8985) after about one RTO (2 x SRTT + TCP_RTO_MIN); the retransmission
// timer then restarts, so the first real retransmission comes at 2 x rto.
func giveUp(n int, rto time.Duration, revert bool) time.Duration {
	const rtoMax = 120 * time.Second
	first := 2 * rto
	deadline := first + retries2Model(n)
	t, step := first, rto
	if !revert {
		step = 2 * rto // the first retransmission doubled the timeout
	}
	for t < deadline {
		t += step
		if !revert {
			step = min(2*step, rtoMax)
		}
	}
	return t
}

// rtoRange is the retransmission timeout a lab connection gets: at least
// TCP_RTO_MIN (200 ms) plus the smoothed RTT (tens of microseconds on an
// idle machine), rounded up to timer ticks; 230 ms bounds it with room to
// spare. On a loaded machine the handshake's RTT, and so the RTO, can be
// far larger: a run then predicts from the RTO the kernel actually set
// (Config.rto, read with TCP_INFO after connect).
var rtoRange = [2]time.Duration{200 * time.Millisecond, 230 * time.Millisecond}

// rtoBounds is the RTO range a prediction assumes under cfg.
func rtoBounds(cfg Config) [2]time.Duration {
	if cfg.rto > 0 {
		return [2]time.Duration{cfg.rto, cfg.rto + 30*time.Millisecond}
	}
	return rtoRange
}

func synSettings(cfg Config) Settings {
	n := fastSynRetries
	if cfg.KernelDefaults {
		n = defaultSynRetries
	}
	knobs := []Knob{{Node: topology.Client, Key: "net.ipv4.tcp_syn_retries", Value: strconv.Itoa(n)}}
	linear := synLinearTimeouts()
	if linear >= 0 {
		knobs = append(knobs, Knob{Node: topology.Client, Key: "net.ipv4.tcp_syn_linear_timeouts", Value: strconv.Itoa(linear)})
	}
	syns, giveUp := synSchedule(n, max(linear, 0))
	var at []string
	for _, t := range syns {
		at = append(at, strconv.FormatFloat(t.Seconds(), 'f', -1, 64))
	}
	return Settings{
		Knobs:     knobs,
		Predicted: giveUp,
		Basis:     fmt.Sprintf("SYNs at %s s, then give up at %s", strings.Join(at, ", "), fmtDur(giveUp)),
	}
}

func dataSettings(cfg Config, revert bool) Settings {
	n := fastRetries2
	if cfg.KernelDefaults {
		n = defaultRetries2
	}
	rto := rtoBounds(cfg)
	// Where the deadline falls close to an expiry, a slightly larger RTO
	// can end the connection one expiry sooner: take the span over the
	// whole range.
	lo, hi := giveUp(n, rto[0], revert), giveUp(n, rto[0], revert)
	for r := rto[0]; r <= rto[1]; r += time.Millisecond {
		g := giveUp(n, r, revert)
		lo, hi = min(lo, g), max(hi, g)
	}
	sched := "retransmissions back off from about 200 ms, doubling"
	if revert {
		sched = "each ICMP undoes the backoff, so retransmissions come about every 200 ms"
	}
	return Settings{
		Knobs:     []Knob{{Node: topology.Client, Key: "net.ipv4.tcp_retries2", Value: strconv.Itoa(n)}},
		Predicted: lo,
		Window:    &Window{Min: lo, Max: hi},
		RTO:       rto[1],
		Basis: fmt.Sprintf("tcp_retries2=%d stands for %s after the first retransmission; %s, and the error comes at the first timer expiry past that deadline: %s to %s for an RTO of %s to %s",
			n, fmtDur(retries2Model(n)), sched, fmtDur(lo), fmtDur(hi), fmtDur(rto[0]), fmtDur(rto[1])),
	}
}

func noTimer(Config) Settings { return Settings{Basis: "no kernel timer involved"} }

func init() {
	register(&Case{
		ID:      "connect-timeout",
		Packets: connectTimeoutPackets,
		Title:   "No answer to SYN",
		Summary: "the router silently drops the SYN; connect retries, then fails with ETIMEDOUT",
		Trigger: "router drops the client's SYNs (nftables, no answer)",
		Textbook: Expectation{
			Summary: "The kernel resends the SYN (BSD: after 6 s, then 24 s) and gives up after 75 s in total; connect fails with ETIMEDOUT.",
			Calls:   []Call{{Node: "client", Syscall: "connect", Result: "ETIMEDOUT", Within: &Window{Min: 75 * time.Second, Max: 75 * time.Second}}},
		},
		Linux: func(s Settings) Expectation {
			return Expectation{
				Summary: "The SYN is retransmitted on Linux's schedule and connect fails with ETIMEDOUT when the attempt's time or retransmissions run out: " + s.Basis + ".",
				Calls:   []Call{{Node: "client", Syscall: "connect", Result: "ETIMEDOUT", Within: Around(s.Predicted)}},
			}
		},
		Why: "Linux times the SYN from 1 s (TCP_TIMEOUT_INIT, RFC 6298) and bounds the attempt by net.ipv4.tcp_syn_retries (default 6), as the time that many " +
			"doubling timeouts take, 127 s, or that many retransmissions (tcp_write_timeout); BSD uses a 75 s connection-establishment timer (tcp_keepinit) " +
			"instead. Recent kernels add net.ipv4.tcp_syn_linear_timeouts (default 4; tcplab sets it explicitly where the kernel has it), which keeps the first four " +
			"retransmissions 1 s apart before the doubling starts and allows four more retransmissions: with the defaults the SYNs go out at 0, 1, 2, 3, 4, 5, 7, 11, " +
			"19, 35 and 67 s and connect gives up at 131 s.",
		Settings: synSettings,
		Steps: func(r *Run) error {
			if err := r.Fault("router", "drop SYNs to the server", func() error {
				return impair.Drop(r.Lab, impair.Match{Dst: r.ip(topology.Server), DstPort: uint16(r.Port()), SYN: true})
			}); err != nil {
				return err
			}
			_, err := r.connect()
			return err
		},
	})

	register(&Case{
		ID:      "connect-refused",
		Packets: connectRefusedPackets,
		Title:   "RST answers SYN",
		Summary: "nothing listens on the server port; the RST makes connect fail at once with ECONNREFUSED",
		Trigger: "no listener on the server port",
		Textbook: Expectation{
			Summary: "Nothing listens on that port, so the server's kernel answers the SYN with a RST; the RST is a hard error and connect fails at once with ECONNREFUSED.",
			Calls:   []Call{{Node: "client", Syscall: "connect", Result: "ECONNREFUSED", Within: AtOnce()}},
		},
		Linux: func(Settings) Expectation {
			return Expectation{
				Summary: "As the textbook: the server's stack answers the SYN with RST,ACK (tcp_v4_send_reset) and connect fails at once with ECONNREFUSED.",
				Calls:   []Call{{Node: "client", Syscall: "connect", Result: "ECONNREFUSED", Within: AtOnce()}},
			}
		},
		Settings: noTimer,
		Steps: func(r *Run) error {
			r.mark("server", fmt.Sprintf("nothing listens on port %d", r.Port()), true)
			_, err := r.connect()
			return err
		},
	})

	register(&Case{
		ID:      "connect-unreachable",
		Packets: connectUnreachablePackets,
		Title:   "ICMP destination unreachable answers SYN",
		Summary: "the router answers the SYN with ICMP host- then net-unreachable; Linux fails connect at once",
		Trigger: "router rejects the SYN with ICMP host-unreachable, then with net-unreachable (nftables reject)",
		Textbook: Expectation{
			Summary: "A soft error: the kernel keeps the ICMP, keeps resending the SYN on the same schedule, and after the 75 s timeout connect reports EHOSTUNREACH (or ENETUNREACH) instead of ETIMEDOUT.",
			Calls: []Call{
				{Node: "client", Syscall: "connect", Result: "EHOSTUNREACH", Within: &Window{Min: 75 * time.Second, Max: 75 * time.Second}},
				{Node: "client", Syscall: "connect", Result: "ENETUNREACH", Within: &Window{Min: 75 * time.Second, Max: 75 * time.Second}},
			},
		},
		Linux: func(s Settings) Expectation {
			return Expectation{
				Summary: "A hard error, once the socket is free to take it: the ICMP answering the first SYN arrives while connect still holds the socket and is only stored; " +
					"the one answering the SYN retransmitted after 1 s aborts the attempt, and connect fails with EHOSTUNREACH (host-unreachable) or ENETUNREACH (net-unreachable) instead of retrying for minutes.",
				Calls: []Call{
					{Node: "client", Syscall: "connect", Result: "EHOSTUNREACH", Within: Around(s.Predicted)},
					{Node: "client", Syscall: "connect", Result: "ENETUNREACH", Within: Around(s.Predicted)},
				},
			}
		},
		Why: "In tcp_v4_err (net/ipv4/tcp_ipv4.c) an ICMP unreachable for a socket in SYN_SENT ends the attempt at once with the ICMP's errno " +
			"(tcp_done_with_error), unlike BSD's tcp_notify, which keeps it as a soft error until the connection-establishment timer expires " +
			"(RFC 1122 4.2.3.9 says host and net unreachable should not abort). Only when the socket is locked by its owner is the ICMP merely " +
			"stored (sk_err_soft). In this lab the router's answer to the first SYN is processed within the connect call that sent it, while the " +
			"socket is still locked; the SYN retransmitted from the timer after TCP_TIMEOUT_INIT (1 s) draws an ICMP that finds it unlocked. Across a " +
			"real network, where the ICMP comes back after connect has gone to sleep, the first ICMP already aborts.",
		Settings: func(Config) Settings {
			return Settings{Predicted: time.Second, Floor: 2 * time.Second,
				Basis: "in each of the two connects, the first SYN retransmission, TCP_TIMEOUT_INIT = 1 s after the SYN, draws the aborting ICMP"}
		},
		Steps: func(r *Run) error {
			for _, code := range r.unreachableCodes() {
				if err := impair.Clear(r.Lab); err != nil {
					return err
				}
				if err := r.Fault("router", "reject SYNs with "+r.icmpName(code), func() error {
					return impair.Reject(r.Lab, impair.Match{Dst: r.ip(topology.Server), DstPort: uint16(r.Port()), SYN: true}, code)
				}); err != nil {
					return err
				}
				if _, err := r.connect(); err != nil {
					return err
				}
			}
			return nil
		},
	})

	register(&Case{
		ID:      "accept-aborted",
		Packets: acceptAbortedPackets,
		Title:   "Client resets before accept",
		Summary: "the client connects then resets before the server accepts; Linux's accept still returns the connection",
		Trigger: "client connects, then closes with SO_LINGER {on, 0} (sends RST) before the server calls accept",
		Textbook: Expectation{
			Summary: "POSIX: accept fails with ECONNABORTED (Berkeley: the connection is silently dropped from the queue and accept blocks or fails with EWOULDBLOCK; SVR4: EPROTO).",
			Calls: []Call{
				{Node: "server", Syscall: "listen", Result: "ok"},
				{Node: "client", Syscall: "connect", Result: "ok"},
				{Node: "client", Syscall: "close(linger=0)", Result: "ok"},
				{Node: "server", Syscall: "accept", Result: "ECONNABORTED"},
			},
		},
		Linux: func(Settings) Expectation {
			return Expectation{
				Summary: "accept succeeds and returns the reset connection; the first read on it fails with ECONNRESET, the next returns 0.",
				Calls: []Call{
					{Node: "server", Syscall: "listen", Result: "ok"},
					{Node: "client", Syscall: "connect", Result: "ok"},
					{Node: "client", Syscall: "close(linger=0)", Result: "ok"},
					{Node: "server", Syscall: "accept", Result: "ok", Within: AtOnce()},
					{Node: "server", Syscall: "recv", Result: "ECONNRESET", Within: AtOnce()},
					{Node: "server", Syscall: "recv", Result: "eof", Within: AtOnce()},
				},
			}
		},
		Why: "On Linux the handshake completes in the kernel and the new socket waits, fully established, in the listener's accept queue. The RST " +
			"(tcp_reset) closes that child socket and records ECONNRESET in it, but leaves it queued; inet_csk_accept hands out whatever is queued " +
			"without looking at its state, so accept succeeds and the error surfaces on the first read.",
		Settings: noTimer,
		Steps: func(r *Run) error {
			if err := r.listen(); err != nil {
				return err
			}
			ev, err := r.connect()
			if err != nil {
				return err
			}
			if ev.Result != "ok" {
				return fmt.Errorf("client connect: %s", ev.Result)
			}
			if _, err := r.Call(r.Client, syscallCmd("close-rst")); err != nil {
				return err
			}
			r.mark("client", "RST sent (close with SO_LINGER {on, 0})", true)
			// Accept only once the server's stack has processed the RST.
			if err := r.waitServerConnGone(ev.Local, 5*time.Second); err != nil {
				return err
			}
			r.mark("server", "server stack has dropped the connection; accept queue still holds it", false)
			if _, err := r.Call(r.Server, syscallCmd("accept")); err != nil {
				return err
			}
			for range 2 {
				if _, err := r.Call(r.Server, syscallCmd("recv")); err != nil {
					return err
				}
			}
			return nil
		},
	})

	register(&Case{
		ID:      "server-killed",
		Packets: serverKilledPackets,
		Title:   "Server process killed",
		Summary: "the server process is killed; its FIN gives the client EOF, and the client's next write draws a RST",
		Trigger: "SIGKILL to the server process",
		Textbook: Expectation{
			Summary: "The killed process's descriptors are closed and a FIN is sent: the client's read returns 0 (EOF); the client's next write is answered by a RST.",
			Calls: append(established(),
				Call{Node: "server", Syscall: "recv", Result: "killed", Signal: "SIGKILL"},
				Call{Node: "client", Syscall: "recv", Result: "eof"},
				Call{Node: "client", Syscall: "send", Result: "ok"},
				Call{Node: "client", Syscall: "poll", Result: "POLLERR|POLLHUP"},
			),
		},
		Linux: func(Settings) Expectation {
			return Expectation{
				Summary: "As the textbook: read returns 0 at once; the write succeeds (the data is only queued), the server's stack answers it with a RST, and poll reports POLLERR|POLLHUP.",
				Calls: append(established(),
					Call{Node: "server", Syscall: "recv", Result: "killed", Signal: "SIGKILL"},
					Call{Node: "client", Syscall: "recv", Result: "eof", Within: AtOnce()},
					Call{Node: "client", Syscall: "send", Result: "ok", Within: AtOnce()},
					Call{Node: "client", Syscall: "poll", Result: "POLLERR|POLLHUP", Within: AtOnce()},
				),
			}
		},
		Settings: noTimer,
		Steps: func(r *Run) error {
			return r.killedServer(false, func() error {
				return r.Fault("server", "SIGKILL to the server process", func() error {
					r.Server.Kill()
					return nil
				})
			})
		},
	})

	register(&Case{
		ID:      "sigpipe",
		Packets: serverKilledPackets,
		Title:   "Write after RST",
		Summary: "after the server is killed, the client writes twice; the second write raises SIGPIPE and fails with EPIPE",
		Trigger: "SIGKILL to the server process, then two writes from the client",
		Textbook: Expectation{
			Summary: "Writing to a socket that has received a RST makes the kernel send SIGPIPE (default action: terminate); if it is caught or ignored, write fails with EPIPE. The two come together.",
			Calls: append(established(),
				Call{Node: "server", Syscall: "recv", Result: "killed", Signal: "SIGKILL"},
				Call{Node: "client", Syscall: "recv", Result: "eof"},
				Call{Node: "client", Syscall: "send", Result: "ok"},
				Call{Node: "client", Syscall: "poll", Result: "POLLERR|POLLHUP"},
				Call{Node: "client", Syscall: "send", Result: "EPIPE", Signal: "SIGPIPE"},
			),
		},
		Linux: func(Settings) Expectation {
			return Expectation{
				Summary: "As the textbook: the RST leaves the socket closed with EPIPE pending (tcp_reset in CLOSE_WAIT); the second write fails with EPIPE and SIGPIPE is delivered to the writer (sk_stream_error).",
				Calls: append(established(),
					Call{Node: "server", Syscall: "recv", Result: "killed", Signal: "SIGKILL"},
					Call{Node: "client", Syscall: "recv", Result: "eof", Within: AtOnce()},
					Call{Node: "client", Syscall: "send", Result: "ok", Within: AtOnce()},
					Call{Node: "client", Syscall: "poll", Result: "POLLERR|POLLHUP", Within: AtOnce()},
					Call{Node: "client", Syscall: "send", Result: "EPIPE", Signal: "SIGPIPE", Within: AtOnce()},
				),
			}
		},
		Settings: noTimer,
		Steps: func(r *Run) error {
			return r.killedServer(true, func() error {
				return r.Fault("server", "SIGKILL to the server process", func() error {
					r.Server.Kill()
					return nil
				})
			})
		},
	})

	register(&Case{
		ID:      "host-crash",
		Packets: hostCrashPackets,
		Title:   "Server host crashes",
		Summary: "the server's link dies silently; the client retransmits until it gives up with ETIMEDOUT",
		Trigger: "server link brought down: no FIN, no RST, no ICMP (the router's neighbour entry for the server is permanent, so it never reports the loss)",
		Textbook: Expectation{
			Summary: "The client retransmits its data, backing off, for about 9 minutes (BSD: 12 retransmissions), then gives up; read fails with ETIMEDOUT.",
			Calls: append(established(),
				Call{Node: "client", Syscall: "send", Result: "ok"},
				Call{Node: "client", Syscall: "recv", Result: "ETIMEDOUT", Within: &Window{Min: 9 * time.Minute, Max: 9 * time.Minute}},
			),
		},
		Linux: func(s Settings) Expectation {
			return Expectation{
				Summary: "The client retransmits with exponential backoff from about 200 ms and gives up when the time modelled from net.ipv4.tcp_retries2 has passed; recv fails with ETIMEDOUT: " + s.Basis + ".",
				Calls: append(established(),
					Call{Node: "client", Syscall: "send", Result: "ok", Within: AtOnce()},
					Call{Node: "client", Syscall: "recv", Result: "ETIMEDOUT", Within: s.Window.Widen()},
				),
			}
		},
		Why: "Linux bounds retransmission by time, not count: net.ipv4.tcp_retries2 (default 15) is turned into the time 15 doubling timeouts from 200 ms " +
			"capped at 120 s would take, 924.6 s or about 15.4 min (retransmits_timed_out, tcp_model_timeout), where BSD gives up after 12 retransmissions, about 9 min.",
		Settings: func(cfg Config) Settings { return dataSettings(cfg, false) },
		Steps: func(r *Run) error {
			if err := r.establish(); err != nil {
				return err
			}
			if err := r.Fault("server", "server link down (crash)", func() error { return impair.Crash(r.Lab) }); err != nil {
				return err
			}
			return r.sendThenRecv()
		},
	})

	register(&Case{
		ID:      "host-unreachable",
		Packets: hostUnreachablePackets,
		Title:   "Router reports the server unreachable",
		Summary: "the router answers the client's data with ICMP host-unreachable; the client retransmits, then fails with EHOSTUNREACH",
		Trigger: "router rejects the client's segments with ICMP host-unreachable (nftables reject), after the connection is established",
		Textbook: Expectation{
			Summary: "The client retransmits; each ICMP is kept as a soft error; when the retransmission timeout expires the error reported is EHOSTUNREACH instead of ETIMEDOUT.",
			Calls: append(established(),
				Call{Node: "client", Syscall: "send", Result: "ok"},
				Call{Node: "client", Syscall: "recv", Result: "EHOSTUNREACH", Within: &Window{Min: 9 * time.Minute, Max: 9 * time.Minute}},
			),
		},
		Linux: func(s Settings) Expectation {
			return Expectation{
				Summary: "As the textbook: the ICMP is kept as a soft error (sk_err_soft) and reported when the retransmission deadline passes: " + s.Basis + "; recv fails with EHOSTUNREACH.",
				Calls: append(established(),
					Call{Node: "client", Syscall: "send", Result: "ok", Within: AtOnce()},
					Call{Node: "client", Syscall: "recv", Result: "EHOSTUNREACH", Within: s.Window.Widen()},
				),
			}
		},
		Why: "Same errno and deadline, different packets: on each ICMP host or net unreachable for the oldest unacknowledged segment, Linux undoes one " +
			"step of the exponential backoff (tcp_ld_RTO_revert, RFC 6069), so it keeps retransmitting about every 200 ms instead of backing off; the " +
			"deadline is time-based (tcp_retries2), so the error still comes when the timeout model says. With IP_RECVERR set the error would be reported at once. " +
			"Over IPv6 the router sends ICMPv6 address unreachable (code 3), which tcp_v6_err keeps as a soft error (EHOSTUNREACH) but does not use to undo " +
			"the backoff (it does so only for no-route, code 0): the retransmissions back off as in host-crash, and the error comes as late.",
		// tcp_v6_err undoes the backoff only for ICMPv6 no-route.
		Settings: func(cfg Config) Settings { return dataSettings(cfg, cfg.Family != 6) },
		Steps: func(r *Run) error {
			if err := r.establish(); err != nil {
				return err
			}
			code := r.unreachableCodes()[0]
			if err := r.Fault("router", "reject client segments with "+r.icmpName(code), func() error {
				return impair.Reject(r.Lab, impair.Match{Src: r.ip(topology.Client), Dst: r.ip(topology.Server), DstPort: uint16(r.Port())}, code)
			}); err != nil {
				return err
			}
			return r.sendThenRecv()
		},
	})

	register(&Case{
		ID:      "host-reboot",
		Packets: hostRebootPackets,
		Title:   "Server host crashes and reboots",
		Summary: "the server host loses all TCP state and comes back; the client's next segment draws a RST: ECONNRESET",
		Trigger: "server namespace flushed (link down, processes killed, sockets destroyed, namespace recreated with the same addresses and MAC, link up)",
		Textbook: Expectation{
			Summary: "All TCP state on the server is lost; the client's next segment reaches a host that knows nothing of the connection and draws a RST; read fails with ECONNRESET.",
			Calls: append(established(),
				Call{Node: "server", Syscall: "recv", Result: "killed", Signal: "SIGKILL"},
				Call{Node: "client", Syscall: "send", Result: "ok"},
				Call{Node: "client", Syscall: "recv", Result: "ECONNRESET"},
			),
		},
		Linux: func(Settings) Expectation {
			return Expectation{
				Summary: "As the textbook: the rebooted stack finds no socket for the segment and answers with a RST (tcp_v4_send_reset); recv fails with ECONNRESET.",
				Calls: append(established(),
					Call{Node: "server", Syscall: "recv", Result: "killed", Signal: "SIGKILL"},
					Call{Node: "client", Syscall: "send", Result: "ok", Within: AtOnce()},
					Call{Node: "client", Syscall: "recv", Result: "ECONNRESET", Within: AtOnce()},
				),
			}
		},
		Settings: noTimer,
		Steps: func(r *Run) error {
			if err := r.establish(); err != nil {
				return err
			}
			if err := r.Begin(r.Server, syscallCmd("recv")); err != nil {
				return err
			}
			if err := r.reboot(); err != nil {
				return err
			}
			if err := r.Killed(r.Server, "recv"); err != nil {
				return err
			}
			return r.sendThenRecv()
		},
	})

	register(&Case{
		ID:      "host-shutdown",
		Packets: hostShutdownPackets,
		Title:   "Server host shut down",
		Summary: "init sends SIGTERM, waits, then SIGKILL; the server closes, a FIN is sent, as when it is killed",
		Trigger: "SIGTERM to the server process, a grace period (--grace), then SIGKILL if it still runs",
		Textbook: Expectation{
			Summary: "init sends SIGTERM to every process, waits, then SIGKILLs the rest; the server's descriptors are closed and a FIN is sent: the client's read returns 0, its next write draws a RST.",
			Calls: append(established(),
				Call{Node: "server", Syscall: "recv", Result: "killed", Signal: "SIGTERM"},
				Call{Node: "client", Syscall: "recv", Result: "eof"},
				Call{Node: "client", Syscall: "send", Result: "ok"},
				Call{Node: "client", Syscall: "poll", Result: "POLLERR|POLLHUP"},
			),
		},
		Linux: func(Settings) Expectation {
			return Expectation{
				Summary: "As the textbook: the server, which does not catch SIGTERM, dies of it at once; the FIN follows at once, long before the SIGKILL would have been due.",
				Calls: append(established(),
					Call{Node: "server", Syscall: "recv", Result: "killed", Signal: "SIGTERM"},
					Call{Node: "client", Syscall: "recv", Result: "eof", Within: AtOnce()},
					Call{Node: "client", Syscall: "send", Result: "ok", Within: AtOnce()},
					Call{Node: "client", Syscall: "poll", Result: "POLLERR|POLLHUP", Within: AtOnce()},
				),
			}
		},
		Settings: func(cfg Config) Settings {
			return Settings{Basis: fmt.Sprintf("grace period %s between SIGTERM and SIGKILL; the server exits on SIGTERM", fmtDur(cfg.withDefaults().Grace))}
		},
		Steps: func(r *Run) error {
			return r.killedServer(false, func() error {
				var st impair.ShutdownTimes
				err := r.Fault("server", "SIGTERM to the server (shutdown)", func() error {
					var err error
					st, err = impair.Shutdown(r.Server.Pid(), r.Cfg.Grace)
					return err
				})
				if err != nil {
					return err
				}
				// The fault is the SIGTERM: move the mark back to it.
				r.mu.Lock()
				r.marks[len(r.marks)-1].T = st.Term
				r.mu.Unlock()
				if !st.Kill.IsZero() {
					r.Note("server", "SIGKILL after the grace period", st.Kill)
				}
				r.Note("server", "server process exited", st.Exit)
				return nil
			})
		},
	})
}

// killedServer is the shared course of the cases where the server process
// dies: the server waits in recv, the fault ends it, and the client reads
// EOF, writes (drawing a RST), waits for the RST, and with secondWrite
// writes again.
func (r *Run) killedServer(secondWrite bool, fault func() error) error {
	if err := r.establish(); err != nil {
		return err
	}
	if err := r.Begin(r.Server, syscallCmd("recv")); err != nil {
		return err
	}
	if err := fault(); err != nil {
		return err
	}
	if err := r.Killed(r.Server, "recv"); err != nil {
		return err
	}
	if _, err := r.Call(r.Client, syscallCmd("recv")); err != nil {
		return err
	}
	if _, err := r.Call(r.Client, Cmd{Op: "send", Len: 100}); err != nil {
		return err
	}
	if _, err := r.Call(r.Client, Cmd{Op: "poll", TimeoutMS: 5000}); err != nil {
		return err
	}
	if secondWrite {
		_, err := r.Call(r.Client, Cmd{Op: "send", Len: 100})
		return err
	}
	return nil
}
