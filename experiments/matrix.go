package experiments

import (
	"fmt"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/impair"
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
	// Errno is what the kernel's table turns the code into
	// (icmp_err_convert, icmpv6_err_convert).
	Errno string
	// Revert tells whether the code undoes the retransmission backoff
	// (tcp_ld_RTO_revert: IPv4 net and host unreachable, IPv6 no-route).
	Revert bool
}

// Name is the code's name (capture's vocabulary).
func (c Code) Name() string { return capture.UnreachableName(c.Family, c.Code) }

// Codes are the codes the matrix covers.
var Codes = []Code{
	{4, capture.NetUnreachable, "ENETUNREACH", true},
	{4, capture.HostUnreachable, "EHOSTUNREACH", true},
	{4, capture.ProtoUnreachable, "ENOPROTOOPT", false},
	{4, capture.PortUnreachable, "ECONNREFUSED", false},
	{4, capture.NetProhibited, "ENETUNREACH", false},
	{4, capture.HostProhibited, "EHOSTUNREACH", false},
	{4, capture.AdminProhibited, "EHOSTUNREACH", false},
	{6, capture.NoRoute6, "ENETUNREACH", true},
	{6, capture.AdminProhibited6, "EACCES", false},
	{6, capture.BeyondScope6, "EHOSTUNREACH", false},
	{6, capture.AddrUnreachable6, "EHOSTUNREACH", false},
	{6, capture.PortUnreachable6, "ECONNREFUSED", false},
}

// Phases of a matrix row.
const (
	PhaseSYN     = "syn"
	PhaseData    = "data"
	PhaseSurvive = "survive"
)

// matrixCase builds the case one cell runs.
func matrixCase(c Code, phase string) *Case {
	id := fmt.Sprintf("matrix-%s-v%d-%s", phase, c.Family, c.Name())
	// The code in this cell's family only.
	fault := impair.Reject("reject-"+c.Name(), c.Code, c.Code)
	inject := func(r *Run, o impair.Options) error { return r.Inject(fault, o) }
	k := &Case{ID: id, Title: fmt.Sprintf("IPv%d %s answering the %s", c.Family, c.Name(), phase), Linux: func(Timing) string { return "" }}
	switch phase {
	case PhaseSYN:
		k.Settings = synSettings
		// The router drops the first SYN and rejects the retransmission,
		// whose ICMP always finds the socket free (see connect-unreachable):
		// it aborts the attempt at the first retransmission.
		k.Course = func(Timing) []Step {
			return []Step{linuxOnly("client", "connect", c.Errno).within(Around(time.Second))}
		}
		k.Steps = func(r *Run) error {
			o := r.synOpts()
			o.FirstSYNDropped = true
			if err := inject(r, o); err != nil {
				return err
			}
			_, err := r.connect()
			return err
		}
		k.Packets = func(t Timing) []PacketCheck {
			a := addrsOf(t.Family)
			return []PacketCheck{
				{Desc: "SYNs before connect failed (the first, dropped, and its retransmission)", Point: PointRouterClient, Match: and(tcpFromClient(a, t.Port), flagsAre(capture.SYN)), Min: 2, Max: 2},
				{Desc: "the router's ICMP, for the retransmitted SYN", Point: PointRouterClient, Match: icmpUnreachable(a, c.Code, t.Port), Min: 1, Max: 1},
			}
		}
	case PhaseData:
		k.Settings = func(cfg Config) Settings { return dataSettings(cfg, c.Revert) }
		k.Course = func(t Timing) []Step {
			return append(linuxCourse(established()),
				linuxOnly("client", "send", "ok").within(AtOnce()),
				linuxOnly("client", "recv", c.Errno).within(afterWrite(t.Window.Widen())),
			)
		}
		k.Steps = func(r *Run) error {
			if err := r.establish(); err != nil {
				return err
			}
			if err := inject(r, r.opts()); err != nil {
				return err
			}
			return r.sendThenRecv()
		}
		k.Packets = func(t Timing) []PacketCheck {
			a := addrsOf(t.Family)
			judge := backingOff(rtoBounds(t))
			if c.Revert {
				judge = notBackingOff(max(t.RTO, rtoRange[1]))
			}
			return []PacketCheck{
				{Desc: "the client's data and its retransmissions", Point: PointRouterClient, AfterFault: true, Match: and(tcpFromClient(a, t.Port), withData), Min: 3, Max: -1, Judge: judge},
				{Desc: "the router's ICMP for them", Point: PointRouterClient, AfterFault: true, Match: icmpUnreachable(a, c.Code, t.Port), Min: 2, Max: -1},
			}
		}
	case PhaseSurvive:
		k.Settings = func(cfg Config) Settings { return dataSettings(cfg, c.Revert) }
		// A soft error: the connection lives on, and the data gets
		// through once the router forwards again.
		k.Course = func(Timing) []Step {
			return append(linuxCourse(established()),
				linuxOnly("client", "send", "ok").within(AtOnce()),
				linuxOnly("server", "recv", "ok"),
			)
		}
		k.Steps = func(r *Run) error {
			if err := r.establish(); err != nil {
				return err
			}
			if err := inject(r, r.opts()); err != nil {
				return err
			}
			if _, err := r.Call(r.Client, Cmd{Op: "send", Len: 100}); err != nil {
				return err
			}
			icmp := capture.ICMPProto(r.Cfg.Family)
			if err := r.waitPackets(PointRouterClient, 2, func(p Pkt) bool { return p.Proto == icmp }, 5*time.Second); err != nil {
				return err
			}
			if err := r.Fault("router", "forward again (rule removed)", func() error { return fault.Clear(r.Lab) }); err != nil {
				return err
			}
			_, err := r.Call(r.Server, syscallCmd("recv"))
			return err
		}
		k.Packets = func(t Timing) []PacketCheck {
			a := addrsOf(t.Family)
			return []PacketCheck{
				{Desc: "the client's data reaching the server once forwarded again", Point: PointRouterServer, AfterFault: true, Match: and(tcpFromClient(a, t.Port), withData), Min: 1, Max: -1},
			}
		}
	}
	return k
}

// linuxCourse keeps only Linux's account of steps: a matrix cell has no
// textbook of its own.
func linuxCourse(steps []Step) []Step {
	for i := range steps {
		o := steps[i].Book
		steps[i].Linux, steps[i].Book = &o, Outcome{}
	}
	return steps
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
	cell := Cell{Family: code.Family, Code: code.Code, Name: code.Name(), Verdict: r.Verdict, Result: r}
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
