package experiments

import (
	"fmt"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/impair"
	"github.com/tcplab/tcplab/topology"
)

// The ICMP matrix: for each address family and each destination-unreachable
// code the router can send, what a client sees when that code answers (a)
// its SYN and (b) its data on an established connection, and whether (c)
// the connection survives the ICMP once the router lets segments through
// again. Each cell runs for real on its own lab, as a case built for it.

// Code is one destination-unreachable code and what Linux makes of it.
type Code struct {
	Family int
	Code   uint8
	Name   string
	// Errno is what the kernel's table turns the code into
	// (icmp_err_convert, icmpv6_err_convert).
	Errno string
	// Revert tells whether the code undoes the retransmission backoff
	// (tcp_ld_RTO_revert: IPv4 net and host unreachable, IPv6 no-route).
	Revert bool
}

// Codes are the codes the matrix covers.
var Codes = []Code{
	{4, impair.NetUnreachable, "net-unreachable", "ENETUNREACH", true},
	{4, impair.HostUnreachable, "host-unreachable", "EHOSTUNREACH", true},
	{4, impair.ProtoUnreachable, "prot-unreachable", "ENOPROTOOPT", false},
	{4, impair.PortUnreachable, "port-unreachable", "ECONNREFUSED", false},
	{4, impair.NetProhibited, "net-prohibited", "ENETUNREACH", false},
	{4, impair.HostProhibited, "host-prohibited", "EHOSTUNREACH", false},
	{4, impair.AdminProhibited, "admin-prohibited", "EHOSTUNREACH", false},
	{6, impair.NoRoute6, "no-route", "ENETUNREACH", true},
	{6, impair.AdminProhibited6, "admin-prohibited", "EACCES", false},
	{6, impair.BeyondScope6, "beyond-scope", "EHOSTUNREACH", false},
	{6, impair.AddrUnreachable6, "address-unreachable", "EHOSTUNREACH", false},
	{6, impair.PortUnreachable6, "port-unreachable", "ECONNREFUSED", false},
}

// Phases of a matrix row.
const (
	PhaseSYN     = "syn"
	PhaseData    = "data"
	PhaseSurvive = "survive"
)

// matrixCase builds the case one cell runs.
func matrixCase(c Code, phase string) *Case {
	id := fmt.Sprintf("matrix-%s-v%d-%s", phase, c.Family, c.Name)
	reject := func(r *Run, m impair.Match) error {
		return r.Fault("router", fmt.Sprintf("reject with %s", r.icmpName(c.Code)), func() error { return impair.Reject(r.Lab, m, c.Code) })
	}
	k := &Case{ID: id, Title: fmt.Sprintf("IPv%d %s answering the %s", c.Family, c.Name, phase)}
	switch phase {
	case PhaseSYN:
		k.Settings = synSettings
		k.Linux = func(Settings) Expectation {
			// The ICMP for the first SYN arrives while connect holds the
			// socket and is only stored; the one for the SYN retransmitted
			// after 1 s aborts the attempt.
			return Expectation{Calls: []Call{{Node: "client", Syscall: "connect", Result: c.Errno, Within: Around(time.Second)}}}
		}
		k.Steps = func(r *Run) error {
			if err := reject(r, impair.Match{Dst: r.ip(topology.Server), DstPort: uint16(r.Port()), SYN: true}); err != nil {
				return err
			}
			_, err := r.connect()
			return err
		}
		k.Packets = func(s Settings, port uint16) []PacketCheck {
			a := addrsOf(s)
			return []PacketCheck{
				{Desc: "SYNs before connect failed", Point: PointRouterClient, Match: and(tcpFromClient(a, port), flags("SYN")), Min: 2, Max: 2},
				{Desc: "the router's ICMP, one per SYN", Point: PointRouterClient, Match: icmpUnreachable(a, c.Code, port), Min: 2, Max: 2},
			}
		}
	case PhaseData:
		k.Settings = func(cfg Config) Settings { return dataSettings(cfg, c.Revert) }
		k.Linux = func(s Settings) Expectation {
			return Expectation{Calls: append(established(),
				Call{Node: "client", Syscall: "send", Result: "ok", Within: AtOnce()},
				Call{Node: "client", Syscall: "recv", Result: c.Errno, Within: s.Window.Widen()},
			)}
		}
		k.Steps = func(r *Run) error {
			if err := r.establish(); err != nil {
				return err
			}
			if err := reject(r, impair.Match{Src: r.ip(topology.Client), Dst: r.ip(topology.Server), DstPort: uint16(r.Port())}); err != nil {
				return err
			}
			return r.sendThenRecv()
		}
		k.Packets = func(s Settings, port uint16) []PacketCheck {
			a := addrsOf(s)
			judge := backingOff
			if c.Revert {
				judge = notBackingOff(max(s.RTO, rtoRange[1]))
			}
			return []PacketCheck{
				{Desc: "the client's data and its retransmissions", Point: PointRouterClient, AfterFault: true, Match: and(tcpFromClient(a, port), withData), Min: 3, Max: -1, Judge: judge},
				{Desc: "the router's ICMP for them", Point: PointRouterClient, AfterFault: true, Match: icmpUnreachable(a, c.Code, port), Min: 2, Max: -1},
			}
		}
	case PhaseSurvive:
		k.Settings = func(cfg Config) Settings { return dataSettings(cfg, c.Revert) }
		k.Linux = func(Settings) Expectation {
			// A soft error: the connection lives on, and the data gets
			// through once the router forwards again.
			return Expectation{Calls: append(established(),
				Call{Node: "client", Syscall: "send", Result: "ok", Within: AtOnce()},
				Call{Node: "server", Syscall: "recv", Result: "ok"},
			)}
		}
		k.Steps = func(r *Run) error {
			if err := r.establish(); err != nil {
				return err
			}
			if err := reject(r, impair.Match{Src: r.ip(topology.Client), Dst: r.ip(topology.Server), DstPort: uint16(r.Port())}); err != nil {
				return err
			}
			if _, err := r.Call(r.Client, Cmd{Op: "send", Len: 100}); err != nil {
				return err
			}
			if err := r.waitPackets(PointRouterClient, 2, func(p Pkt) bool { return p.Proto == addrsOf(r.Settings).icmp }, 5*time.Second); err != nil {
				return err
			}
			if err := r.Fault("router", "forward again (rule removed)", func() error { return impair.Clear(r.Lab) }); err != nil {
				return err
			}
			_, err := r.Call(r.Server, syscallCmd("recv"))
			return err
		}
		k.Packets = func(s Settings, port uint16) []PacketCheck {
			a := addrsOf(s)
			return []PacketCheck{
				{Desc: "the client's data reaching the server once forwarded again", Point: PointRouterServer, AfterFault: true, Match: and(tcpFromClient(a, port), withData), Min: 1, Max: -1},
			}
		}
	}
	return k
}

// waitPackets waits until n packets matching at the capture point have been
// captured, reading the capture as it runs.
func (r *Run) waitPackets(point string, n int, match func(Pkt) bool, timeout time.Duration) error {
	c := r.caps.live[point]
	if c == nil {
		return fmt.Errorf("no capture at %s to wait on (--no-capture?)", point)
	}
	deadline := time.Now().Add(timeout)
	for {
		got := 0
		for _, f := range c.Snapshot() {
			if match(Pkt{Decoded: capture.Decode(f.Data)}) {
				got++
			}
		}
		if got >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("saw %d of %d packets at %s in %v", got, n, point, timeout)
		}
		time.Sleep(5 * time.Millisecond) // polling the running capture
	}
}

// Cell is one cell of the matrix.
type Cell struct {
	Family   int     `json:"family"`
	Code     uint8   `json:"code"`
	Name     string  `json:"name"`
	Phase    string  `json:"phase"`
	Errno    string  `json:"errno"`
	AfterMS  float64 `json:"after_ms"`
	Segments int     `json:"segments"` // SYNs or data segments the client sent
	Survives *bool   `json:"survives,omitempty"`
	Verdict  string  `json:"verdict"`
	Detail   string  `json:"detail,omitempty"`
	Result   Result  `json:"-"`
}

// MatrixJobs are the cells to run, for the families given.
func MatrixJobs(families []int) []Job {
	var jobs []Job
	for _, f := range families {
		for _, c := range Codes {
			if c.Family != f {
				continue
			}
			for _, ph := range []string{PhaseSYN, PhaseData, PhaseSurvive} {
				jobs = append(jobs, Job{Case: matrixCase(c, ph), Family: f})
			}
		}
	}
	return jobs
}

// CellOf reads a matrix cell from the result of its job.
func CellOf(j Job, r Result) Cell {
	var code Code
	for _, c := range Codes {
		if matrixCase(c, PhaseSYN).ID == j.Case.ID || matrixCase(c, PhaseData).ID == j.Case.ID || matrixCase(c, PhaseSurvive).ID == j.Case.ID {
			code = c
		}
	}
	cell := Cell{Family: code.Family, Code: code.Code, Name: code.Name, Verdict: r.Verdict, Result: r}
	for _, ph := range []string{PhaseSYN, PhaseData, PhaseSurvive} {
		if matrixCase(code, ph).ID == j.Case.ID {
			cell.Phase = ph
		}
	}
	for _, e := range r.Events {
		switch {
		case cell.Phase == PhaseSYN && e.Syscall == "connect", cell.Phase == PhaseData && e.Node == "client" && e.Syscall == "recv":
			cell.Errno, cell.AfterMS = e.Result, e.TMS
		case cell.Phase == PhaseSurvive && e.Node == "server" && e.Syscall == "recv":
			ok := e.Result == "ok"
			cell.Survives = &ok
			cell.Errno = e.Result
		}
	}
	if len(r.PacketChecks) > 0 && cell.Phase != PhaseSurvive {
		cell.Segments = r.PacketChecks[0].Got
	}
	if r.Verdict != Match {
		cell.Detail = r.Error
		for _, m := range r.Mismatches {
			cell.Detail += m + "; "
		}
	}
	return cell
}
