// Package experiments holds the registry of cases and runs them: each case
// is a value with its textbook and Linux expectations declared beside the
// steps that reproduce it on a real lab.
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
}

// Around is the window for a kernel timer predicted to fire at d: it allows
// for scheduling and timer slack on a loaded two-core machine, early by
// at most 5% + 50 ms, late by at most 15% + 400 ms.
func Around(d time.Duration) *Window { return (&Window{Min: d, Max: d}).Widen() }

// Widen applies Around's tolerance to both ends of a predicted span.
func (w *Window) Widen() *Window {
	return &Window{Min: w.Min - w.Min/20 - 50*time.Millisecond, Max: w.Max + w.Max*15/100 + 400*time.Millisecond}
}

// AtOnce is the window for a call that no timer delays: it returns as soon
// as the packets have crossed the lab.
func AtOnce() *Window { return &Window{Min: 0, Max: 500 * time.Millisecond} }

func (w *Window) String() string {
	if w == nil {
		return ""
	}
	if w.Min <= 0 {
		return "within " + fmtDur(w.Max)
	}
	return "after " + fmtDur(w.Min) + ".." + fmtDur(w.Max)
}

// MarshalJSON gives the window in milliseconds.
func (w *Window) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, `{"min_ms":%d,"max_ms":%d}`, w.Min.Milliseconds(), w.Max.Milliseconds()), nil
}

// UnmarshalJSON reads what MarshalJSON writes, so a saved result keeps
// its windows.
func (w *Window) UnmarshalJSON(b []byte) error {
	var v struct {
		Min int64 `json:"min_ms"`
		Max int64 `json:"max_ms"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	w.Min, w.Max = time.Duration(v.Min)*time.Millisecond, time.Duration(v.Max)*time.Millisecond
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

// Knob is one timer setting in force during a case.
type Knob struct {
	Node  string `json:"node"`
	Key   string `json:"key"`
	Value string `json:"value"`
}

func (k Knob) String() string { return fmt.Sprintf("%s %s=%s", k.Node, k.Key, k.Value) }

// Settings is what a case's timers are under a configuration: the knobs to
// set and the timeout they predict.
type Settings struct {
	Knobs []Knob
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
	// Family is the address family the case runs over, 4 or 6.
	Family int
	// RTO is the largest retransmission timeout the prediction allows.
	RTO time.Duration
}

// Case is one entry of the catalogue.
type Case struct {
	ID      string
	Title   string
	Summary string // one line, for `tcplab list`
	Trigger string // what the lab does to cause it
	// Textbook is the BSD/POSIX account (CASES.md, after Stevens).
	Textbook Expectation
	// Linux gives this kernel's expected behaviour under the settings.
	Linux func(s Settings) Expectation
	// Why explains, naming the kernel mechanism, where Linux and the
	// textbook differ; empty when they agree.
	Why string
	// Packets gives the packets the case must see and must not see,
	// checked on the captures; port is the server's port.
	Packets func(s Settings, port uint16) []PacketCheck
	// Settings gives the knobs for a configuration.
	Settings func(cfg Config) Settings
	// Steps drives the lab, the agents and the fault.
	Steps func(r *Run) error
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
	// rto is the RTO the kernel set for the run's connection, once known.
	rto time.Duration
	// NoCapture runs without packet capture: no timeline of packets, no
	// packet checks in the verdict, no pcap files.
	NoCapture bool
	// Progress, if set, is called about every 100 ms while a case runs.
	Progress func(caseID string, elapsed, predicted time.Duration)
}

// DefaultGrace is the shutdown grace period: what sysvinit's sendsigs
// allows by default before SIGKILL (systemd allows 90 s).
const DefaultGrace = 5 * time.Second

// DefaultPort is the server port the cases use.
const DefaultPort = 8000

func (c Config) withDefaults() Config {
	if c.Grace == 0 {
		c.Grace = DefaultGrace
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.Family == 0 {
		c.Family = 4
	}
	return c
}

var registry = map[string]*Case{}
var order []string

func register(c *Case) {
	if _, dup := registry[c.ID]; dup {
		panic("duplicate case " + c.ID)
	}
	registry[c.ID] = c
	order = append(order, c.ID)
}

// All returns the cases in catalogue order.
func All() []*Case {
	out := make([]*Case, 0, len(order))
	for _, id := range order {
		out = append(out, registry[id])
	}
	return out
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
	return nil, fmt.Errorf("unknown case %q%s; valid cases: %s, all", id, hint, strings.Join(ids, ", "))
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
	l := c.Linux(c.Settings(Config{}.withDefaults())).Calls
	if len(l) != len(c.Textbook.Calls) {
		return false
	}
	for i, t := range c.Textbook.Calls {
		if t.Node != l[i].Node || t.Syscall != l[i].Syscall || t.Result != l[i].Result || t.Signal != l[i].Signal {
			return false
		}
	}
	return true
}
