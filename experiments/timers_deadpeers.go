package experiments

import (
	"fmt"
	"strconv"
	"time"

	"github.com/tcplab/tcplab/topology"
)

// Models of the timers that notice a dead peer or a forgetful middlebox:
// keepalive, TCP_USER_TIMEOUT, the connection tracker's timeout.

// Kernel defaults of keepalive (net.ipv4.tcp_keepalive_time, _intvl,
// _probes), which the per-socket options TCP_KEEPIDLE, TCP_KEEPINTVL and
// TCP_KEEPCNT override.
const (
	defaultKeepIdle   = 7200 * time.Second
	defaultKeepIntvl  = 75 * time.Second
	defaultKeepProbes = 9
)

// keepalive is one socket's keepalive settings.
type keepalive struct {
	Idle, Intvl time.Duration
	Cnt         int
}

// opts are the socket options that set k and turn keepalive on.
func (k keepalive) opts() []Opt { return append([]Opt{{"SO_KEEPALIVE", 1}}, k.timers()...) }

// timers are k's times and count alone, keepalive still off.
func (k keepalive) timers() []Opt {
	return []Opt{{"TCP_KEEPIDLE", int(k.Idle / time.Second)}, {"TCP_KEEPINTVL", int(k.Intvl / time.Second)}, {"TCP_KEEPCNT", k.Cnt}}
}

// probes are when keepalive probes go out, counted from the last segment
// received: tcp_keepalive_timer fires when the connection has been idle
// for Idle (keepalive_time_elapsed: since the last segment received), sends
// a probe, and fires again every Intvl.
func (k keepalive) probes() []time.Duration {
	var at []time.Duration
	for i := range k.Cnt {
		at = append(at, k.Idle+time.Duration(i)*k.Intvl)
	}
	return at
}

// giveUp is when keepalive gives up, counted from the last segment
// received: at the expiry after the Cnt-th unanswered probe
// (icsk_probes_out >= keepalive_probes), Idle + Cnt x Intvl; the kernel
// then sends a RST (tcp_send_active_reset) and reports ETIMEDOUT
// (tcp_write_err).
func (k keepalive) giveUp() time.Duration { return k.Idle + time.Duration(k.Cnt)*k.Intvl }

// giveUpWithUserTimeout is when keepalive gives up on a socket with
// TCP_USER_TIMEOUT = ut: tcp_keepalive_timer then ignores TCP_KEEPCNT and
// aborts at the first expiry where the idle time has reached ut and at
// least one probe went unanswered.
func (k keepalive) giveUpWithUserTimeout(ut time.Duration) time.Duration {
	for n := 1; ; n++ {
		if t := k.Idle + time.Duration(n)*k.Intvl; t >= ut {
			return t
		}
	}
}

func (k keepalive) String() string {
	return fmt.Sprintf("TCP_KEEPIDLE %s, TCP_KEEPINTVL %s, TCP_KEEPCNT %d", fmtDur(k.Idle), fmtDur(k.Intvl), k.Cnt)
}

// defaultKeepalive is keepalive as the kernel's defaults set it.
var defaultKeepalive = keepalive{defaultKeepIdle, defaultKeepIntvl, defaultKeepProbes}

// keepaliveKnobs write the kernel's keepalive defaults in the client, so
// that the host's own choices never leak in: the cases' sockets override
// them with their own options.
func keepaliveKnobs() []Knob {
	return []Knob{
		{Node: topology.Client, Key: "net.ipv4.tcp_keepalive_time", Value: strconv.Itoa(int(defaultKeepIdle / time.Second))},
		{Node: topology.Client, Key: "net.ipv4.tcp_keepalive_intvl", Value: strconv.Itoa(int(defaultKeepIntvl / time.Second))},
		{Node: topology.Client, Key: "net.ipv4.tcp_keepalive_probes", Value: strconv.Itoa(defaultKeepProbes)},
	}
}

// userTimeoutGiveUp is when a connection with TCP_USER_TIMEOUT = ut whose
// data goes unacknowledged is abandoned, counted from the write: the
// deadline runs from retrans_stamp, which tcp_retransmit_skb sets at the
// first retransmission by the retransmission timer (the tail loss probe
// before it, sent by __tcp_retransmit_skb, does not set it; see giveUp:
// 2 x rto after the write), and tcp_clamp_rto_to_user_timeout shortens the
// last retransmission timer so that it fires when ut has passed since
// then, whatever tcp_retries2 says.
func userTimeoutGiveUp(ut, rto time.Duration) time.Duration { return 2*rto + ut }

// ctTimeout is the connection tracker's established timeout the
// nat-idle-timeout case gives the router, and the kernel's default
// (net.netfilter.nf_conntrack_tcp_timeout_established).
const (
	ctTimeout        = 2 * time.Second
	ctTimeoutDefault = 432000 * time.Second
)
