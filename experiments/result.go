package experiments

import (
	"fmt"
	"sort"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/topology"
)

// Verdicts.
const (
	Match    = "match"
	Mismatch = "mismatch"
	Error    = "error"
)

// Result is the plain-data outcome of one case run: what was declared,
// what was observed, and the verdict. Renderers turn it into text or JSON.
type Result struct {
	Case   string `json:"case"`
	Lab    string `json:"lab"`
	Family int    `json:"family"`
	// Addrs are the nodes' addresses in the run's family, by role.
	Addrs       map[string]string `json:"addrs,omitempty"`
	Title       string            `json:"title"`
	Trigger     string            `json:"trigger"`
	Verdict     string            `json:"verdict"`
	ElapsedMS   float64           `json:"elapsed_ms"`
	Knobs       []Knob            `json:"knobs"`
	PredictedMS float64           `json:"predicted_ms"`
	// FloorMS is the part of the case's time the kernel imposes under the
	// knobs in force (timers the case waits on); WallMS is the whole run,
	// lab built and removed included; OverheadMS is tcplab's own share.
	FloorMS    float64     `json:"floor_ms"`
	WallMS     float64     `json:"wall_ms"`
	OverheadMS float64     `json:"overhead_ms"`
	Basis      string      `json:"predicted_basis,omitempty"`
	Textbook   Expectation `json:"textbook"`
	Expected   Expectation `json:"expected"`
	Why        string      `json:"why,omitempty"`
	Events     []EventOut  `json:"events"`
	Marks      []MarkOut   `json:"marks"`
	// Timeline merges packets, calls and marks, in ms since the start.
	Timeline []Entry `json:"timeline"`
	// PacketChecks are the case's packet expectations and what was seen.
	PacketChecks []PacketCheckResult `json:"packet_checks"`
	// Captures holds the raw frames per capture point, for pcap files.
	Captures map[string][]capture.Packet `json:"-"`
	// ClientProgram and ServerProgram report the user's own programs
	// (run --client-cmd, --server-cmd).
	ClientProgram *Program `json:"client_program,omitempty"`
	ServerProgram *Program `json:"server_program,omitempty"`
	// faultAt is when the first fault was injected.
	faultAt time.Time
	// Mismatches says what differs from the Linux expectation.
	Mismatches []string `json:"mismatches,omitempty"`
	// TextbookAgrees tells whether the calls and results (not the timing)
	// were what the textbook says.
	TextbookAgrees bool     `json:"textbook_agrees"`
	TextbookDiffs  []string `json:"textbook_differences,omitempty"`
	Error          string   `json:"error,omitempty"`
	// Counters are the kernel counters the case watched, with their change.
	Counters []CounterChange `json:"counters,omitempty"`
	// IdleBeforeFaultMS is how long the case's timed connection had been
	// idle when the fault came (keepalive counts from there), if measured.
	IdleBeforeFaultMS float64 `json:"idle_before_fault_ms,omitempty"`
	// Expectations are the user's expectations about their own programs
	// (run --expect-exit, --expect-within, ...) and whether each held.
	Expectations []ExpectationResult `json:"expectations,omitempty"`
}

// EventOut is an observed call, timed from the fault before it.
type EventOut struct {
	TMS        float64 `json:"t_ms"`
	Node       string  `json:"node"`
	Syscall    string  `json:"syscall"`
	Result     string  `json:"result"`
	Signal     string  `json:"signal"`
	Bytes      int     `json:"bytes,omitempty"`
	DurationMS float64 `json:"duration_ms"`
	// AtMS is when the call returned, in ms since the case started.
	AtMS float64 `json:"at_ms"`
}

// MarkOut is a fault or signal the lab applied, in ms since the start.
type MarkOut struct {
	AtMS  float64 `json:"at_ms"`
	Node  string  `json:"node"`
	What  string  `json:"what"`
	Fault bool    `json:"fault"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (r *Run) result(err error) Result {
	c := r.Case
	// Predict from the RTO the kernel set for the connection, when known.
	m := r.measured
	for _, ev := range r.events {
		if ev.Node == "client" && ev.Syscall == "connect" && ev.RTOus > 0 {
			m.RTO = time.Duration(ev.RTOus) * time.Microsecond
		}
	}
	if m != (Measured{}) {
		r.Timing = r.Settings.Predict(m)
	}
	t := r.Timing
	res := Result{
		Case:        c.ID,
		Title:       c.Title,
		Trigger:     c.Trigger,
		Knobs:       t.Knobs,
		PredictedMS: ms(t.Predicted),
		FloorMS:     ms(max(t.Floor, t.Predicted)),
		Basis:       t.Basis,
		Textbook:    c.TextbookAccount(),
		Expected:    c.LinuxAccount(t),
		Why:         c.Why,
		Events:      []EventOut{},
		Marks:       []MarkOut{},
	}
	if r.Lab != nil {
		res.Lab = r.Lab.ID
	}
	res.IdleBeforeFaultMS = ms(m.IdleBeforeFault)
	res.Family = r.Cfg.Family
	res.Addrs = map[string]string{}
	for _, role := range topology.Roles {
		res.Addrs[role] = topology.Shown(role, r.Cfg.Family)
	}
	r.mu.Lock()
	events := append([]Event(nil), r.events...)
	marks := append([]Mark(nil), r.marks...)
	res.Counters = append([]CounterChange(nil), r.counters...)
	r.mu.Unlock()
	sort.SliceStable(marks, func(i, j int) bool { return marks[i].T.Before(marks[j].T) })
	var end time.Time
	for _, m := range marks {
		res.Marks = append(res.Marks, MarkOut{AtMS: ms(m.T.Sub(r.start)), Node: m.Node, What: m.What, Fault: m.Fault})
	}
	for _, ev := range events {
		st, en := time.Unix(0, ev.Start), time.Unix(0, ev.End)
		if en.After(end) {
			end = en
		}
		res.Events = append(res.Events, EventOut{
			TMS:        ms(en.Sub(faultBefore(marks, st, r.start))),
			Node:       ev.Node,
			Syscall:    ev.Syscall,
			Result:     ev.Result,
			Signal:     ev.Signal,
			Bytes:      ev.N,
			DurationMS: ms(en.Sub(st)),
			AtMS:       ms(en.Sub(r.start)),
		})
	}
	if !end.IsZero() {
		res.ElapsedMS = ms(end.Sub(r.start))
	}
	res.faultAt = firstFault(marks)
	pkts := decodeAll(r.raw)
	res.Captures = r.raw
	res.Timeline = r.timelineOf(pkts, events, marks)
	if err == nil && r.capErr != nil {
		err = fmt.Errorf("packet evidence incomplete: %w", r.capErr)
	}
	if err != nil {
		res.Verdict, res.Error = Error, err.Error()
		return res
	}
	if r.byo {
		res.Verdict = Observed
		return res
	}
	res.Mismatches = compare(res.Expected.Calls, res.Events, true, "expected")
	if c.Packets != nil && !r.Cfg.NoCapture {
		res.PacketChecks = checkPackets(c.Packets(t), pkts, firstFault(marks))
		for _, pc := range res.PacketChecks {
			if !pc.OK {
				m := fmt.Sprintf("packets at %s: %s: want %s, saw %d", pc.Point, pc.Desc, pc.Want, pc.Got)
				if pc.Detail != "" {
					m += " (" + pc.Detail + ")"
				}
				res.Mismatches = append(res.Mismatches, m)
			}
		}
	}
	for _, c := range res.Counters {
		if !c.OK {
			res.Mismatches = append(res.Mismatches, fmt.Sprintf("counter %s %s moved by %d during %s, want %s", c.Node, c.Name, c.Delta(), c.During, c.Want))
		}
	}
	res.TextbookDiffs = compare(res.Textbook.Calls, res.Events, false, "the textbook says")
	res.TextbookAgrees = len(res.TextbookDiffs) == 0
	res.Verdict = Match
	if len(res.Mismatches) > 0 {
		res.Verdict = Mismatch
	}
	return res
}

func firstFault(marks []Mark) time.Time {
	for _, m := range marks {
		if m.Fault {
			return m.T
		}
	}
	return time.Time{}
}

// faultBefore returns the latest fault injected at or before t; before the
// first fault, the first fault (times are then negative); with no fault at
// all, the start of the case.
func faultBefore(marks []Mark, t, start time.Time) time.Time {
	var ref, first time.Time
	for _, m := range marks {
		if !m.Fault {
			continue
		}
		if first.IsZero() {
			first = m.T
		}
		if !m.T.After(t) {
			ref = m.T
		}
	}
	switch {
	case !ref.IsZero():
		return ref
	case !first.IsZero():
		return first
	}
	return start
}

// compare checks, node by node and in order, that the observed calls are
// exactly the expected ones, and with timing, that each returned within
// its window.
func compare(want []Call, got []EventOut, timing bool, says string) []string {
	var diffs []string
	nodes := []string{}
	seen := map[string]bool{}
	for _, c := range want {
		if !seen[c.Node] {
			seen[c.Node] = true
			nodes = append(nodes, c.Node)
		}
	}
	for _, e := range got {
		if !seen[e.Node] {
			seen[e.Node] = true
			nodes = append(nodes, e.Node)
		}
	}
	for _, n := range nodes {
		var w []Call
		var g []EventOut
		for _, c := range want {
			if c.Node == n {
				w = append(w, c)
			}
		}
		for _, e := range got {
			if e.Node == n {
				g = append(g, e)
			}
		}
		for i := 0; i < max(len(w), len(g)); i++ {
			switch {
			case i >= len(g):
				diffs = append(diffs, fmt.Sprintf("%s: %s %s, but the %s made no further call", n, says, w[i], n))
			case i >= len(w):
				diffs = append(diffs, fmt.Sprintf("%s: %s no %s → %s%s", n, says, g[i].Syscall, g[i].Result, sigSuffix(g[i].Signal)))
			case w[i].Syscall != g[i].Syscall || w[i].Result != g[i].Result || w[i].Signal != g[i].Signal:
				diffs = append(diffs, fmt.Sprintf("%s: %s %s, observed %s → %s%s", n, says, w[i], g[i].Syscall, g[i].Result, sigSuffix(g[i].Signal)))
			case timing && w[i].Within != nil:
				var prev *EventOut
				if i > 0 {
					prev = &g[i-1]
				}
				if ok, t, since := inWindow(w[i].Within, g[i], prev, peerWrite(got, g[i])); !ok {
					diffs = append(diffs, fmt.Sprintf("%s: %s → %s returned %s after %s, %s %s", n, g[i].Syscall, g[i].Result, fmtDur(t), since, says, w[i].Within))
				}
			}
		}
	}
	return diffs
}

// peerWrite is the latest write (send) of another node begun before e returned,
// or nil.
func peerWrite(got []EventOut, e EventOut) *EventOut {
	var w *EventOut
	for i := range got {
		g := &got[i]
		if g.Node != e.Node && g.Syscall == "send" && g.AtMS-g.DurationMS <= e.AtMS && (w == nil || g.AtMS > w.AtMS) {
			w = g
		}
	}
	return w
}

// inWindow tells whether an observed call returned within w, and when,
// counted from what: the fault, or the later moment w names (prev is the
// node's previous call, peer the other end's write).
func inWindow(w *Window, e EventOut, prev, peer *EventOut) (ok bool, t time.Duration, since string) {
	t, since = time.Duration(e.TMS*float64(time.Millisecond)), "the fault"
	if d := time.Duration(e.DurationMS * float64(time.Millisecond)); w.FromCall && d < t {
		t, since = d, "the call was made"
	}
	if prev != nil && w.FromWrite {
		if d := time.Duration((e.AtMS - prev.AtMS) * float64(time.Millisecond)); d < t {
			t, since = d, "the write"
		}
	}
	if peer != nil && w.FromPeerWrite {
		if d := time.Duration((e.AtMS - (peer.AtMS - peer.DurationMS)) * float64(time.Millisecond)); d < t {
			t, since = d, "the other end's write began"
		}
	}
	return t >= w.Min && t <= w.Max, t, since
}

func sigSuffix(s string) string {
	if s == "" {
		return ""
	}
	return " + " + s
}
