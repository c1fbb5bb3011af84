package experiments

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tcplab/tcplab/topology"
)

// Models of the kernel timers the cases wait on, and the settings that
// shorten them.

// Kernel defaults of the timers the cases shorten.
const (
	defaultSynRetries = 6  // net.ipv4.tcp_syn_retries
	defaultRetries2   = 15 // net.ipv4.tcp_retries2
	fastSynRetries    = 2
	fastRetries2      = 2
)

// tcpRTOMax is TCP_RTO_MAX: the retransmission timeout stops doubling there.
const tcpRTOMax = 120 * time.Second

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
// retries2Model(n) after it. Expiries double from rto up to TCP_RTO_MAX,
// or with revert (RFC 6069: each ICMP unreachable undoes the doubling of the
// retransmission it answers, tcp_ld_RTO_revert) come every rto.
//
// The revert needs icsk_retransmits, an 8-bit counter, to be non-zero: at
// the 256th, 512th, ... retransmission it wraps to 0, that ICMP undoes
// nothing, and the backoff stays one step higher for good; at that expiry
// retransmits_timed_out does not test the deadline either. Only full-length
// runs (--kernel-defaults) get that far.
//
// A single unacknowledged segment is first probed by a tail loss probe
// (RFC 8985) after about one RTO (2 x SRTT + TCP_RTO_MIN); the retransmission
// timer then restarts, so the first real retransmission comes at 2 x rto.
func giveUp(n int, rto time.Duration, revert bool) time.Duration {
	first := 2 * rto
	deadline := first + retries2Model(n)
	t := first
	for i := 1; ; i++ { // i retransmissions made, the last at t
		t += retransGap(i, rto, revert)
		if i%256 != 0 && t >= deadline {
			return t
		}
	}
}

// retransGap is the timeout after the i-th retransmission: see giveUp.
func retransGap(i int, rto time.Duration, revert bool) time.Duration {
	level := i // each retransmission doubled the timeout
	if revert {
		level = i / 256 // each ICMP undid it, but where the counter wrapped
	}
	if level >= 10 {
		return tcpRTOMax
	}
	return min(rto<<level, tcpRTOMax)
}

// rtoRange is the retransmission timeout a lab connection gets: at least
// TCP_RTO_MIN (200 ms) plus the smoothed RTT (tens of microseconds on an
// idle machine), rounded up to timer ticks; 230 ms bounds it with room to
// spare. On a loaded machine the handshake's RTT, and so the RTO, can be
// far larger: a run then predicts from the RTO the kernel actually set
// (Measured.RTO, read with TCP_INFO after connect).
var rtoRange = [2]time.Duration{200 * time.Millisecond, 230 * time.Millisecond}

// rtoBounds is the span of retransmission timeouts a run's prediction
// allows: up to the RTO it measured (or rtoRange's top), and at most 30 ms
// less, not under rtoRange's bottom; rtoRange for a prediction that sets
// no RTO.
func rtoBounds(t Timing) [2]time.Duration {
	if t.RTO == 0 {
		return rtoRange
	}
	return [2]time.Duration{max(t.RTO-30*time.Millisecond, rtoRange[0]), t.RTO}
}

// synSettings: an unanswered connect, under tcp_syn_retries.
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

// dataSettings: unacknowledged data on an established connection, under
// tcp_retries2; revert when each ICMP undoes one backoff step.
func dataSettings(cfg Config, revert bool) Settings {
	n := fastRetries2
	if cfg.KernelDefaults {
		n = defaultRetries2
	}
	return Settings{
		Knobs: []Knob{{Node: topology.Client, Key: "net.ipv4.tcp_retries2", Value: strconv.Itoa(n)}},
		predict: func(rto [2]time.Duration) Timing {
			// Where the deadline falls close to an expiry, a slightly
			// larger RTO can end the connection one expiry sooner: take
			// the span over the whole range.
			lo, hi := giveUp(n, rto[0], revert), giveUp(n, rto[0], revert)
			for r := rto[0]; r <= rto[1]; r += time.Millisecond {
				g := giveUp(n, r, revert)
				lo, hi = min(lo, g), max(hi, g)
			}
			sched := "retransmissions back off from about 200 ms, doubling"
			if revert {
				sched = "each ICMP undoes the backoff, so retransmissions come about every 200 ms"
			}
			return Timing{
				Predicted: lo,
				Window:    &Window{Min: lo, Max: hi},
				RTO:       rto[1],
				Basis: fmt.Sprintf("tcp_retries2=%d stands for %s after the first retransmission; %s, and the error comes at the first timer expiry past that deadline: %s to %s for an RTO of %s to %s",
					n, fmtDur(retries2Model(n)), sched, fmtDur(lo), fmtDur(hi), fmtDur(rto[0]), fmtDur(rto[1])),
			}
		},
	}
}

// noTimer: a case no kernel timer delays.
func noTimer(Config) Settings { return Settings{Basis: "no kernel timer involved"} }

// keepTimeWait: a case that counts on the server's TIME_WAIT, which no
// kernel timer delays either. On a loaded machine a FIN sent again because
// its ACK was late can reach the client after the connection has ended
// there (the copy crossing the final ACK), and the client answers it with
// a RST; with net.ipv4.tcp_rfc1337=0, the default, that RST ends the
// server's TIME_WAIT at once (tcp_timewait_state_process: RFC 1337's
// "TIME-WAIT assassination"), and what the case shows with it. The lab
// takes the race away.
func keepTimeWait(cfg Config) Settings {
	s := noTimer(cfg)
	s.Basis += "; a RST does not end the server's TIME_WAIT (RFC 1337)"
	s.Knobs = []Knob{{Node: topology.Server, Key: "net.ipv4.tcp_rfc1337", Value: "1"}}
	return s
}
