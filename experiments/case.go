// Package experiments holds the catalogue and runs it. Each case is one
// file (case_*.go) registering one value: its textbook account, its Linux
// expectation stated as what differs from the textbook, the explanation,
// its timer settings, the steps that reproduce it on a real lab, its packet
// checks and how it runs with the user's own programs. A run completes its
// configuration once (Config.Complete), computes the case's settings once
// and predicts from what it measured (Settings.Predict), with the built-in
// agents or the user's programs on one course.
package experiments

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Call is one socket call a case expects a node to make, and what it must
// return.
type Call struct {
	Node    string `json:"node"`
	Syscall string `json:"syscall"`
	Result  string `json:"result"`
	Signal  string `json:"signal"`
	// Within, when set, is when the call must return, measured from the
	// fault that preceded it.
	Within *Window `json:"within,omitempty"`
}

// Window is a span of time since a fault.
type Window struct {
	Min time.Duration `json:"-"`
	Max time.Duration `json:"-"`
	// FromCall counts the span from the later of the fault and the moment
	// the call was made: for a call no timer delays, what tcplab itself
	// took to make the call after the fault is not the kernel's time.
	FromCall bool `json:"-"`
	// FromWrite counts the span from the later of the fault and the
	// node's previous call, the write whose retransmissions the call
	// waits on: the timer starts at the write.
	FromWrite bool `json:"-"`
	// FromPeerWrite counts the span from the later of the fault and the
	// other end's latest write begun before the call returned: the call
	// reads data whose delivery that write's timers decide, and tcplab
	// may have made the call only after the data had arrived.
	FromPeerWrite bool `json:"-"`
}

// Around is the window for a kernel timer predicted to fire at d: it allows
// for scheduling and timer slack on a loaded two-core machine, early by
// at most 5% + 50 ms, late by at most 15% + 400 ms.
func Around(d time.Duration) *Window { return (&Window{Min: d, Max: d}).Widen() }

// Widen applies Around's tolerance to both ends of a predicted span.
func (w *Window) Widen() *Window {
	if w == nil {
		return nil
	}
	return &Window{FromCall: w.FromCall, FromWrite: w.FromWrite, FromPeerWrite: w.FromPeerWrite, Min: w.Min - w.Min/20 - 50*time.Millisecond, Max: w.Max + w.Max*15/100 + 400*time.Millisecond}
}

// with returns a copy of w changed by f; a nil window stays nil.
func (w *Window) with(f func(*Window)) *Window {
	if w == nil {
		return nil
	}
	c := *w
	f(&c)
	return &c
}

// shift moves both ends of w later by d.
func (w *Window) shift(d time.Duration) *Window {
	return w.with(func(c *Window) { c.Min, c.Max = c.Min+d, c.Max+d })
}

// afterWrite counts w from the write the call waits on (the node's
// previous call), when that came later than the fault: the retransmission
// timer starts at the write, and tcplab's own delay in making the write
// after the fault is not the kernel's time.
func afterWrite(w *Window) *Window { return w.with(func(c *Window) { c.FromWrite = true }) }

// afterPeerWrite counts w from the other end's write whose data the call
// reads, when that came later than the fault.
func afterPeerWrite(w *Window) *Window { return w.with(func(c *Window) { c.FromPeerWrite = true }) }

// afterCall counts w from the call, when that came later than the fault:
// a timer the call itself starts (connect's SYN timer) runs from the call,
// and tcplab's own delay in making it after the fault is not the kernel's
// time.
func afterCall(w *Window) *Window { return w.with(func(c *Window) { c.FromCall = true }) }

// AtOnce is the window for a call that no timer delays: it returns as soon
// as the packets have crossed the lab, counted from the fault or, if it
// was made later, from the call.
func AtOnce() *Window { return &Window{Min: 0, Max: 500 * time.Millisecond, FromCall: true} }

func (w *Window) String() string {
	if w == nil {
		return ""
	}
	if w.Min <= 0 && w.FromCall {
		return "within " + fmtDur(w.Max) + " of the fault or the call"
	}
	if w.Min <= 0 {
		return "within " + fmtDur(w.Max)
	}
	if w.FromWrite {
		return "after " + fmtDur(w.Min) + ".." + fmtDur(w.Max) + " of the fault or the write"
	}
	if w.FromPeerWrite {
		return "after " + fmtDur(w.Min) + ".." + fmtDur(w.Max) + " of the fault or the other end's write"
	}
	if w.FromCall {
		return "after " + fmtDur(w.Min) + ".." + fmtDur(w.Max) + " of the fault or the call"
	}
	return "after " + fmtDur(w.Min) + ".." + fmtDur(w.Max)
}

// MarshalJSON gives the window in milliseconds.
func (w *Window) MarshalJSON() ([]byte, error) {
	v := struct {
		Min           int64 `json:"min_ms"`
		Max           int64 `json:"max_ms"`
		FromCall      bool  `json:"from_call,omitempty"`
		FromWrite     bool  `json:"from_write,omitempty"`
		FromPeerWrite bool  `json:"from_peer_write,omitempty"`
	}{w.Min.Milliseconds(), w.Max.Milliseconds(), w.FromCall, w.FromWrite, w.FromPeerWrite}
	return json.Marshal(v)
}

// UnmarshalJSON reads what MarshalJSON writes, so a saved result keeps
// its windows.
func (w *Window) UnmarshalJSON(b []byte) error {
	var v struct {
		Min           int64 `json:"min_ms"`
		Max           int64 `json:"max_ms"`
		FromCall      bool  `json:"from_call"`
		FromWrite     bool  `json:"from_write"`
		FromPeerWrite bool  `json:"from_peer_write"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	w.Min, w.Max = time.Duration(v.Min)*time.Millisecond, time.Duration(v.Max)*time.Millisecond
	w.FromCall, w.FromWrite, w.FromPeerWrite = v.FromCall, v.FromWrite, v.FromPeerWrite
	return nil
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Minute:
		return fmt.Sprintf("%.1f min", d.Minutes())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%d ms", d.Milliseconds())
}

func (c Call) String() string {
	s := fmt.Sprintf("%s %s → %s", c.Node, c.Syscall, c.Result)
	if c.Signal != "" {
		s += " + " + c.Signal
	}
	if c.Within != nil {
		s += " (" + c.Within.String() + ")"
	}
	return s
}

// Expectation is what a source says a case does.
type Expectation struct {
	Summary string `json:"summary"`
	Calls   []Call `json:"calls"`
}

// Outcome is what a call returns: a result and the signal delivered with it.
type Outcome struct {
	Result, Signal string
}

// Step is one call of a case's course, declared once for both accounts:
// what the textbook says it returns, and what Linux returns where that
// differs. A call only one account makes has the other's outcome empty.
type Step struct {
	Node, Syscall string
	// Book is the textbook's outcome (Result "" when it has no such
	// call); BookWithin, when the textbook gives a time, is that time.
	Book       Outcome
	BookWithin *Window
	// Linux is Linux's outcome where it differs from Book; nil when the
	// same.
	Linux *Outcome
	// Within is when the call returns on Linux, timed from the fault
	// before it (nil: not timed).
	Within *Window
}

// call is a step both accounts agree on.
func call(node, syscall, result string) Step {
	return Step{Node: node, Syscall: syscall, Book: Outcome{Result: result}}
}

// linuxOnly is a call the textbook's account does not make.
func linuxOnly(node, syscall, result string) Step {
	return Step{Node: node, Syscall: syscall, Linux: &Outcome{Result: result}}
}

// sig adds the signal delivered with the call, in both accounts.
func (s Step) sig(signal string) Step {
	s.Book.Signal = signal
	if s.Linux != nil {
		s.Linux.Signal = signal
	}
	return s
}

// onLinux says what Linux returns instead of the textbook's result.
func (s Step) onLinux(result string) Step {
	s.Linux = &Outcome{Result: result, Signal: s.Book.Signal}
	return s
}

// within times the call on Linux.
func (s Step) within(w *Window) Step { s.Within = w; return s }

// book gives the textbook's time for the call.
func (s Step) book(d time.Duration) Step { s.BookWithin = &Window{Min: d, Max: d}; return s }

// linux is the call as Linux makes it, nil if it does not.
func (s Step) linux() *Call {
	o := s.Book
	if s.Linux != nil {
		o = *s.Linux
	}
	if o.Result == "" {
		return nil
	}
	return &Call{Node: s.Node, Syscall: s.Syscall, Result: o.Result, Signal: o.Signal, Within: s.Within}
}

// textbook is the call as the textbook has it, nil if it has none.
func (s Step) textbook() *Call {
	if s.Book.Result == "" {
		return nil
	}
	return &Call{Node: s.Node, Syscall: s.Syscall, Result: s.Book.Result, Signal: s.Book.Signal, Within: s.BookWithin}
}

// Knob is one timer setting in force during a case.
type Knob struct {
	Node  string `json:"node"`
	Key   string `json:"key"`
	Value string `json:"value"`
}

func (k Knob) String() string { return fmt.Sprintf("%s %s=%s", k.Node, k.Key, k.Value) }

// Settings is what a case's timers are under a configuration, computed
// once where a run starts: the knobs to set and the model of the kernel
// timer the case waits on.
type Settings struct {
	Knobs []Knob
	// Family and Port are the run's address family and server port.
	Family int
	Port   uint16
	// predict models the timer for the span of RTOs the connection may
	// have; nil when no timer is involved (Basis then says so).
	predict func(rto [2]time.Duration) Timing
	// Basis, for a case whose timing does not depend on the RTO, says
	// where its prediction comes from.
	Basis string
	// Predicted and Floor are the RTO-independent prediction, if any.
	Predicted, Floor time.Duration
}

// Measured is what a run measured that predictions depend on.
type Measured struct {
	// RTO is the retransmission timeout the kernel set for the client's
	// connection (TCP_INFO after connect); zero when not known.
	RTO time.Duration
	// IdleBeforeFault is how long the case's timed connection had been
	// idle (nothing received, TCP_INFO) when the fault came: an idle timer
	// (keepalive) counts from there, not from the fault.
	IdleBeforeFault time.Duration
	// FaultLasted is how long a fault the case ends itself lasted (a
	// partition): a deliberate wait that a loaded machine can stretch.
	FaultLasted time.Duration
	// WriteDelay is how long after the fault the case made the write whose
	// retransmissions it times: the retransmission timer starts at the
	// write, and a loaded machine can delay it.
	WriteDelay time.Duration
}

// Timing is what the timers in force predict, given what was measured.
type Timing struct {
	Settings
	// Predicted is when the kernel timer a call waits on fires (0 if
	// none).
	Predicted time.Duration
	// Floor, when set, is the whole case's kernel-imposed time, for a
	// case that waits on Predicted more than once.
	Floor time.Duration
	// Window, when the kernel's choice depends on the connection's RTO,
	// is the span of instants it may pick (before tolerance).
	Window *Window
	// Basis explains how Predicted follows from the knobs.
	Basis string
	// RTO is the largest retransmission timeout the prediction allows.
	RTO time.Duration
	// IdleBeforeFault is Measured's: idle timers fire that much sooner
	// after the fault.
	IdleBeforeFault time.Duration
	// FaultLasted and WriteDelay are Measured's, zero when not measured.
	FaultLasted, WriteDelay time.Duration
}

// Predict applies the settings' timer model to what was measured: without
// a measured RTO, to the range a lab connection gets.
func (s Settings) Predict(m Measured) Timing {
	if s.predict == nil {
		return Timing{Settings: s, Predicted: s.Predicted, Floor: s.Floor, Basis: s.Basis, IdleBeforeFault: m.IdleBeforeFault, FaultLasted: m.FaultLasted, WriteDelay: m.WriteDelay}
	}
	rto := rtoRange
	if m.RTO > 0 {
		rto = [2]time.Duration{m.RTO, m.RTO + 30*time.Millisecond}
	}
	t := s.predict(rto)
	t.Settings, t.IdleBeforeFault, t.FaultLasted, t.WriteDelay = s, m.IdleBeforeFault, m.FaultLasted, m.WriteDelay
	return t
}

// Case is one entry of the catalogue, declared in a file of its own.
type Case struct {
	ID string
	// No is the case's place in the catalogue: CASES.md's numbers, then
	// the second catalogue's.
	No      int
	Title   string
	Summary string // one line, for `tcplab list`
	Trigger string // what the lab does to cause it
	// Textbook is the textbook's account (CASES.md, after Stevens).
	Textbook string
	// Linux is this kernel's account under the timers in force, saying
	// where it differs from the textbook.
	Linux func(t Timing) string
	// Course is the calls the nodes make, in order: each with the
	// textbook's outcome, Linux's where it differs, and when it returns.
	Course func(t Timing) []Step
	// Why explains, naming the kernel mechanism, where Linux and the
	// textbook differ; empty when they agree.
	Why string
	// Settings gives the knobs and timer model for a configuration.
	Settings func(cfg Config) Settings
	// Steps drives the lab, the agents and the fault.
	Steps func(r *Run) error
	// Packets gives the packets the case must see and must not see,
	// checked on the captures.
	Packets func(t Timing) []PacketCheck
	// Own says how the case runs with the user's own programs; nil when
	// it cannot.
	Own *Own
}

// Own is how a case's fault applies to programs tcplab does not drive:
// before the client starts, or once its connection is established.
type Own struct {
	// Listener tells whether a server must listen (false: nothing may).
	Listener bool
	Before   func(r *Run) error
	After    func(r *Run) error
}

// TextbookAccount is the textbook's expectation, as reported.
func (c *Case) TextbookAccount() Expectation {
	e := Expectation{Summary: c.Textbook}
	for _, s := range c.Course(c.anyTiming()) {
		if k := s.textbook(); k != nil {
			e.Calls = append(e.Calls, *k)
		}
	}
	return e
}

// anyTiming is the default configuration's timing, for what does not
// depend on it (the textbook's calls, whether Linux differs).
func (c *Case) anyTiming() Timing {
	return c.SettingsFor(Config{}.Complete()).Predict(Measured{})
}

// LinuxAccount is the Linux expectation under t, as reported and checked.
func (c *Case) LinuxAccount(t Timing) Expectation {
	e := Expectation{Summary: c.Linux(t)}
	for _, s := range c.Course(t) {
		if k := s.linux(); k != nil {
			e.Calls = append(e.Calls, *k)
		}
	}
	return e
}

// Config is how cases are run.
type Config struct {
	// KernelDefaults runs with the kernel's own timers (minutes) instead
	// of the shortened ones.
	KernelDefaults bool
	// Grace is the shutdown grace period between SIGTERM and SIGKILL.
	Grace time.Duration
	// Port is the server's port.
	Port int
	// Family is 4 or 6: the address family of the connection (default 4).
	Family int
	// BYO, if set, runs the cases with the user's own programs.
	BYO *BYO
	// NoCapture runs without packet capture: no timeline of packets, no
	// packet checks in the verdict, no pcap files.
	NoCapture bool
	// Progress, if set, is called about every 100 ms while a case runs.
	Progress func(caseID string, elapsed, predicted time.Duration)
}

// DefaultGrace is the shutdown grace period between SIGTERM and SIGKILL
// (sysvinit's init waits 3 s, Debian's sendsigs up to 10 s, systemd 90 s).
const DefaultGrace = 5 * time.Second

// DefaultPort is the server port the cases use.
const DefaultPort = 8000

// Complete fills in the defaults: a run's configuration is completed once,
// where the run starts.
func (c Config) Complete() Config {
	if c.Grace == 0 {
		c.Grace = DefaultGrace
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.Family == 0 {
		c.Family = 4
	}
	if c.BYO != nil && c.BYO.ClientTimeout == 0 {
		b := *c.BYO
		b.ClientTimeout = DefaultClientTimeout
		c.BYO = &b
	}
	return c
}

// SettingsFor is the case's settings under a completed configuration.
func (c *Case) SettingsFor(cfg Config) Settings {
	s := c.Settings(cfg)
	s.Family, s.Port = cfg.Family, uint16(cfg.Port)
	return s
}

var registry = map[string]*Case{}
var order []string

// register adds a case to the catalogue, in the place its number gives.
func register(c *Case) *Case {
	if _, dup := registry[c.ID]; dup {
		panic("duplicate case " + c.ID)
	}
	for _, id := range order {
		if registry[id].No == c.No {
			panic(fmt.Sprintf("cases %s and %s share number %d", id, c.ID, c.No))
		}
	}
	registry[c.ID] = c
	order = append(order, c.ID)
	sort.SliceStable(order, func(i, j int) bool { return registry[order[i]].No < registry[order[j]].No })
	return c
}

// All returns the cases in catalogue order.
func All() []*Case {
	out := make([]*Case, 0, len(order))
	for _, id := range order {
		out = append(out, registry[id])
	}
	return out
}

// Groups name sets of cases a user can run at once: every case, the first
// catalogue (after Stevens; a few seconds in all) and the second.
var Groups = []struct{ Name, Help string }{
	{"all", "every case"},
	{"first", "the first catalogue: cases 1 to 10, after Stevens"},
	{"second", "the second catalogue: cases 11 to 20, the failures people meet next"},
}

// Group returns the cases of a group, in catalogue order, and whether
// the name is a group.
func Group(name string) ([]*Case, bool) {
	var out []*Case
	for _, c := range All() {
		switch {
		case name == "all", name == "first" && c.No <= 10, name == "second" && c.No > 10:
			out = append(out, c)
		case name != "first" && name != "second":
			return nil, false
		}
	}
	return out, name == "all" || name == "first" || name == "second"
}

// IDs returns the case ids in catalogue order.
func IDs() []string { return append([]string(nil), order...) }

// Lookup finds a case by id. For an unknown id the error lists the valid
// ones and suggests the nearest.
func Lookup(id string) (*Case, error) {
	if c, ok := registry[id]; ok {
		return c, nil
	}
	best, bestD := "", 1<<30
	for _, k := range order {
		if d := editDistance(id, k); d < bestD {
			best, bestD = k, d
		}
	}
	hint := ""
	if bestD <= max(3, len(id)/2) {
		hint = fmt.Sprintf(" (did you mean %q?)", best)
	}
	ids := IDs()
	sort.Strings(ids)
	return nil, fmt.Errorf("unknown case %q%s; valid cases: %s, or a group: all, first, second", id, hint, strings.Join(ids, ", "))
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// TextbookMatchesLinux reports whether the textbook and the Linux
// expectation agree on every call and result (timing aside).
func (c *Case) TextbookMatchesLinux() bool {
	for _, s := range c.Course(c.anyTiming()) {
		if s.Linux != nil || s.Book.Result == "" {
			return false
		}
	}
	return true
}
