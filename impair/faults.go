// Package impair is the lab's named catalogue of faults: nftables rules in
// the router (drop, reject with an ICMP code), the server's link, and the
// server host crashing, rebooting or shutting down. Each fault is applied
// and cleared the same way by `tcplab fault`, the cases' steps and the runs
// with the user's own programs. The host lifecycle it calls (a link going
// down, a namespace recreated) belongs to topology; impair knows nothing of
// cases.
package impair

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/topology"
)

// Options say which segments a fault applies to and how. Rule faults match
// the client's TCP segments to the server.
type Options struct {
	// Family is 4 or 6: the segments matched and the ICMP answer; 0 means
	// both families.
	Family int
	// Port, if set, matches only segments to this server port.
	Port uint16
	// SYN matches only connection attempts: SYN without ACK.
	SYN bool
	// Grace is a shutdown's wait between SIGTERM and SIGKILL.
	Grace time.Duration
	// FirstSYNDropped, for a reject, drops each connection attempt's
	// first SYN and rejects only its retransmissions (implies SYN): the
	// ICMP then always finds the connecting socket free (see
	// rejectRetries).
	FirstSYNDropped bool
	// Timeout is the stateful firewall's timeout for an established
	// connection (0: the kernel's default).
	Timeout time.Duration
	// MTU is the link MTU the mtu fault sets (0: 1280).
	MTU int
}

// Note is something a fault did, at a moment of its own.
type Note struct {
	T    time.Time
	What string
}

// Effect is what applying a fault did.
type Effect struct {
	// At is when the fault took effect, if not when it was applied (a
	// shutdown's SIGTERM).
	At time.Time
	// Notes are the further steps it took, in order.
	Notes []Note
	// Recreated names the node whose namespace and link to the router were
	// made anew (a reboot): captures on that link must start again.
	Recreated string
}

// Fault is one entry of the catalogue.
type Fault struct {
	Name string
	// Node is where the fault is applied: the router or the server.
	Node string
	// Help says what it does, in one line; Mark says it in a few words,
	// for a timeline.
	Help  string
	Mark  string
	apply func(l *topology.Lab, o Options) (Effect, error)
	clear func(l *topology.Lab) error
	// mark, if set, gives the mark for the options (the ICMP code of a
	// family).
	mark func(o Options) string
}

// Apply injects the fault into a running lab.
func (f Fault) Apply(l *topology.Lab, o Options) (Effect, error) {
	e, err := f.apply(l, o)
	if err != nil {
		return e, fmt.Errorf("fault %s: %w", f.Name, err)
	}
	return e, nil
}

// Clear undoes the fault: rules are removed, a link is brought up. A
// fault that cannot be undone (a reboot, a shutdown) clears nothing.
func (f Fault) Clear(l *topology.Lab) error {
	if f.clear == nil {
		return nil
	}
	return f.clear(l)
}

// Describe is the fault as applied with o, for a timeline: its mark with
// what a rule matches.
func (f Fault) Describe(o Options) string {
	s := f.Mark
	if f.mark != nil {
		s = f.mark(o)
	}
	if f.Node != topology.Router {
		return s
	}
	var m []string
	switch {
	case o.FirstSYNDropped:
		m = append(m, "retransmitted SYNs only, the first dropped")
	case o.SYN:
		m = append(m, "SYNs only")
	}
	if o.Port != 0 {
		m = append(m, fmt.Sprintf("port %d", o.Port))
	}
	if o.Family != 0 {
		m = append(m, fmt.Sprintf("IPv%d", o.Family))
	}
	if len(m) > 0 {
		s += " (" + strings.Join(m, ", ") + ")"
	}
	return s
}

// families are the address families o covers.
func (o Options) families() []int {
	if o.Family == 0 {
		return []int{4, 6}
	}
	return []int{o.Family}
}

// match is the client's segments to the server in one family.
func (o Options) match(family int) Match {
	return Match{Src: topology.Addr(topology.Client, family), Dst: topology.Addr(topology.Server, family), DstPort: o.Port, SYN: o.SYN}
}

func clearLink(l *topology.Lab) error { return l.SetLink(topology.Server, topology.Router, true) }

// Drop is the router silently discarding the client's segments.
var Drop = Fault{
	Name: "drop", Node: topology.Router,
	Help: "the router silently drops the client's segments to the server",
	Mark: "router drops the client's segments",
	apply: func(l *topology.Lab, o Options) (Effect, error) {
		for _, fam := range o.families() {
			if err := drop(l, o.match(fam)); err != nil {
				return Effect{}, err
			}
		}
		return Effect{}, nil
	},
	clear: clearRules,
}

// Reject is the router answering the client's segments with ICMP (over
// IPv6, ICMPv6) destination unreachable: code4 for IPv4, code6 for IPv6.
// The catalogue's reject faults are instances; the ICMP matrix makes one per
// code, for one family.
func Reject(name string, code4, code6 uint8) Fault {
	help := fmt.Sprintf("the router answers them with ICMP %s (ICMPv6 %s)", capture.UnreachableName(4, code4), capture.UnreachableName(6, code6))
	return Fault{
		Name: name, Node: topology.Router, Help: help,
		mark: func(o Options) string {
			switch o.Family {
			case 4:
				return "router rejects the client's segments with ICMP " + capture.UnreachableName(4, code4)
			case 6:
				return "router rejects the client's segments with ICMPv6 " + capture.UnreachableName(6, code6)
			}
			return "router rejects the client's segments with ICMP " + capture.UnreachableName(4, code4) + " (ICMPv6 " + capture.UnreachableName(6, code6) + ")"
		},
		apply: func(l *topology.Lab, o Options) (Effect, error) {
			for _, fam := range o.families() {
				code := code4
				if fam == 6 {
					code = code6
				}
				add := reject
				if o.FirstSYNDropped {
					add = rejectRetries
				}
				if err := add(l, o.match(fam), code); err != nil {
					return Effect{}, err
				}
			}
			return Effect{}, nil
		},
		clear: clearRules,
	}
}

// The catalogue's reject faults.
var (
	RejectHost  = Reject("reject-host", capture.HostUnreachable, capture.AddrUnreachable6)
	RejectNet   = Reject("reject-net", capture.NetUnreachable, capture.NoRoute6)
	RejectAdmin = Reject("reject-admin", capture.AdminProhibited, capture.AdminProhibited6)
	RejectPort  = Reject("reject-port", capture.PortUnreachable, capture.PortUnreachable6)
)

// LinkDown and LinkUp set the server's link to the router down and up;
// up restores the addresses' routes and neighbours that down flushed.
var (
	LinkDown = Fault{
		Name: "link-down", Node: topology.Server, Help: "the server's link goes down", Mark: "server link down",
		apply: func(l *topology.Lab, _ Options) (Effect, error) { return Effect{}, crash(l) },
		clear: clearLink,
	}
	LinkUp = Fault{
		Name: "link-up", Node: topology.Server, Help: "the server's link comes back up", Mark: "server link up",
		apply: func(l *topology.Lab, _ Options) (Effect, error) { return Effect{}, clearLink(l) },
	}
)

// Kill is the server's processes killed: SIGKILL to every process in the
// server host, which stays up.
var Kill = Fault{
	Name: "kill", Node: topology.Server,
	Help:  "SIGKILL to every process of the server (the host stays up)",
	Mark:  "SIGKILL to the server's processes",
	apply: func(l *topology.Lab, _ Options) (Effect, error) { return Effect{}, topology.KillProcesses(l.Server) },
}

// Crash is the server host vanishing silently: see crash.
var Crash = Fault{
	Name: "crash", Node: topology.Server,
	Help:  "the server host crashes silently (link down; the router never reports it)",
	Mark:  "server link down (crash)",
	apply: func(l *topology.Lab, _ Options) (Effect, error) { return Effect{}, crash(l) },
	clear: clearLink,
}

// CrashReported is a crash the router reports: see crashReported.
var CrashReported = Fault{
	Name: "crash-reported", Node: topology.Server,
	Help:  "the server host crashes and the router reports it (ICMP host-unreachable after ARP fails)",
	Mark:  "server link down, the router's entry for it learnt (crash, reported)",
	apply: func(l *topology.Lab, _ Options) (Effect, error) { return Effect{}, crashReported(l) },
	clear: clearLink,
}

// Reboot is the server host losing every process and all TCP state and
// coming back with the same addresses (topology's Lab.Reboot).
var Reboot = Fault{
	Name: "reboot", Node: topology.Server,
	Help: "the server host reboots: its processes and TCP state are gone, it comes back with the same addresses",
	Mark: "server host crashes (reboot begins)",
	apply: func(l *topology.Lab, _ Options) (Effect, error) {
		down, err := l.Reboot(topology.Server)
		e := Effect{Recreated: topology.Server}
		if !down.IsZero() {
			e.Notes = append(e.Notes, Note{down, "server host down: processes killed, sockets destroyed, link and namespace deleted"})
		}
		if err == nil {
			e.Notes = append(e.Notes, Note{time.Now(), "server host back up: same addresses and MAC, no TCP state"})
		}
		return e, err
	},
}

// Shutdown is init shutting the server host down: SIGTERM to every process
// in it, up to the grace period for them to exit, then SIGKILL.
var Shutdown = Fault{
	Name: "shutdown", Node: topology.Server,
	Help: "the server host shuts down: SIGTERM to its processes, --grace, then SIGKILL",
	Mark: "SIGTERM to the server's processes (shutdown)",
	apply: func(l *topology.Lab, o Options) (Effect, error) {
		st, err := shutdownNode(l.Server, o.Grace)
		e := Effect{At: st.Term}
		if !st.Kill.IsZero() {
			e.Notes = append(e.Notes, Note{st.Kill, "SIGKILL to what was left after the grace period"})
		}
		if !st.Exit.IsZero() {
			e.Notes = append(e.Notes, Note{st.Exit, "server processes exited"})
		}
		return e, err
	},
}

// catalogue is every named fault, in the order `tcplab fault` lists them.
var catalogue = []Fault{Drop, RejectHost, RejectNet, RejectAdmin, RejectPort, LinkDown, LinkUp, Kill, Crash, CrashReported, Reboot, Shutdown}

// Faults returns the catalogue.
func Faults() []Fault { return append([]Fault(nil), catalogue...) }

// Lookup finds a fault of the catalogue by name.
func Lookup(name string) (Fault, error) {
	for _, f := range catalogue {
		if f.Name == name {
			return f, nil
		}
	}
	return Fault{}, fmt.Errorf("unknown fault %q; faults: %s", name, strings.Join(Names(), ", "))
}

// Names lists the faults' names.
func Names() []string {
	var n []string
	for _, f := range catalogue {
		n = append(n, f.Name)
	}
	return n
}

// ClearAll removes every fault that can be removed: every rule in the
// router, and the server's link brought up.
func ClearAll(l *topology.Lab) error {
	errs := []error{clearRules(l), clearLink(l)}
	for _, c := range extraClears {
		errs = append(errs, c(l))
	}
	return errors.Join(errs...)
}

// extraClears undo what faults beyond rules and the server's link leave
// behind (a link MTU, a sysctl), added by the files that define them.
var extraClears []func(l *topology.Lab) error
