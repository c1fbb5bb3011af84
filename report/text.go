// Package report renders results: text with ladder diagrams, JSON, HTML,
// JUnit XML and pcap files. It reads results and capture's types only: it
// never runs a case, and knows neither the lab (topology) nor the faults
// (impair).
package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/tcplab/tcplab/experiments"
)

// Text writes the readable report of one case run, without colour.
func Text(w io.Writer, r experiments.Result) { TextWith(w, r, TextOptions{}) }

// TextWith writes the readable report of one case run.
func TextWith(w io.Writer, r experiments.Result, o TextOptions) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	title := fmt.Sprintf("== %s: %s ", caseName(r), r.Title)
	p("%s%s\n", title, strings.Repeat("=", max(0, 78-len([]rune(title)))))
	field(w, "trigger", r.Trigger)
	if len(r.Knobs) > 0 {
		var ks []string
		for _, k := range r.Knobs {
			ks = append(ks, k.String())
		}
		field(w, "knobs", strings.Join(ks, ", "))
	}
	if r.Basis != "" {
		field(w, "timers", r.Basis)
	}
	field(w, "textbook", r.Textbook.Summary)
	field(w, "linux", r.Expected.Summary)
	p("observed  calls (ms from the fault before each; faults and signals marked *)\n")
	for _, l := range timeline(r) {
		p("  %s\n", l)
	}
	if len(r.Timeline) > 0 {
		p("ladder    ms since the start; each packet is an arrow from its sender: ┼ the\n")
		p("          router forwarded it, X it did not; * a fault or signal, · a note;\n")
		p("          ├ ┤ a call and its result; ×N: N in a row (resent, or a transfer)\n")
		Ladder(w, r, o)
	}
	if len(r.PacketChecks) > 0 {
		p("packets\n")
		for _, c := range r.PacketChecks {
			mark := "ok "
			if !c.OK {
				mark = "NO "
			}
			line := fmt.Sprintf("%s %s: %s, saw %d", mark, c.Desc, c.Want, c.Got)
			if c.Detail != "" {
				line += "; " + c.Detail
			}
			for i, l := range wrap(line, 72) {
				if i == 0 {
					p("  %s\n", l)
				} else {
					p("      %s\n", l)
				}
			}
		}
	}
	if len(r.Counters) > 0 {
		p("counters  kernel counters of the node's namespace, before and after\n")
		for _, c := range r.Counters {
			for i, l := range wrap(c.String(), 72) {
				if i == 0 {
					p("  %s\n", l)
				} else {
					p("      %s\n", l)
				}
			}
		}
	}
	if r.Why != "" {
		field(w, "why", r.Why)
	}
	for _, pr := range []struct {
		label string
		p     *experiments.Program
	}{{"client", r.ClientProgram}, {"server", r.ServerProgram}} {
		if pr.p != nil {
			programText(w, pr.label, pr.p)
		}
	}
	expectationsText(w, r)
	switch r.Verdict {
	case experiments.Pass, experiments.Fail:
		verdictText(w, r)
	case experiments.Observed:
		p("verdict   OBSERVED: your programs ran under the fault; there is no declared\n          expectation for them, only what they did\n")
	case experiments.Match:
		p("verdict   MATCH: this kernel did as the Linux expectation declares")
	case experiments.Mismatch:
		p("verdict   MISMATCH: this kernel did not do what the Linux expectation declares\n")
		for _, m := range r.Mismatches {
			p("          - %s\n", m)
		}
	default:
		p("verdict   ERROR: the case could not run: %s\n", r.Error)
	}
	if r.Verdict == experiments.Match {
		if r.TextbookAgrees {
			p(";\n          the calls and errors are the textbook's\n")
		} else {
			p("; the textbook differs:\n")
			for _, d := range r.TextbookDiffs {
				p("          - %s\n", d)
			}
		}
	}
	p("\n")
}

// field prints a labelled paragraph wrapped to 78 columns.
func field(w io.Writer, label, text string) {
	lines := wrap(text, 68)
	for i, l := range lines {
		if i == 0 {
			fmt.Fprintf(w, "%-9s %s\n", label, l)
		} else {
			fmt.Fprintf(w, "%-9s %s\n", "", l)
		}
	}
}

func wrap(s string, width int) []string {
	var lines []string
	var cur string
	for _, word := range strings.Fields(s) {
		if cur != "" && len([]rune(cur))+1+len([]rune(word)) > width {
			lines = append(lines, cur)
			cur = word
			continue
		}
		if cur != "" {
			cur += " "
		}
		cur += word
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return lines
}

// timeline merges calls and marks in the order they happened.
func timeline(r experiments.Result) []string {
	type row struct {
		at   float64
		text string
	}
	var rows []row
	for _, m := range r.Marks {
		rows = append(rows, row{m.AtMS, fmt.Sprintf("%9s  %-6s * %s", "", m.Node, m.What)})
	}
	for _, e := range r.Events {
		res := e.Result
		if e.Signal != "" {
			res += " + " + e.Signal
		}
		if e.Bytes > 0 {
			res += fmt.Sprintf(" (%d bytes)", e.Bytes)
		}
		rows = append(rows, row{e.AtMS, fmt.Sprintf("%+9.1f  %-6s %s → %s", e.TMS, e.Node, e.Syscall, res)})
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].at < rows[j].at })
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.text
	}
	return out
}

// Matrix writes the closing table: case | textbook | Linux observed | verdict.
func Matrix(w io.Writer, results []experiments.Result) {
	fmt.Fprintf(w, "%-21s %-28s %-20s %s\n", "case", "textbook", "linux observed", "verdict")
	fmt.Fprintf(w, "%s\n", strings.Repeat("-", 80))
	for _, r := range results {
		tb, obs := decisive(r)
		fmt.Fprintf(w, "%-21s %-28s %-20s %s\n", caseName(r), tb, obs, r.Verdict)
	}
}

// decisive picks the call that makes the case: the textbook's last call,
// and what this kernel returned for the same call.
func decisive(r experiments.Result) (textbook, observed string) {
	if len(r.Textbook.Calls) == 0 {
		return "", ""
	}
	c := r.Textbook.Calls[len(r.Textbook.Calls)-1]
	textbook = short(c.Syscall, c.Result, c.Signal)
	switch {
	case c.Within == nil:
	case c.Within.Min == 0:
		textbook += " at once"
	default:
		textbook += " " + shortDur(c.Within.Max)
	}
	observed = "-"
	for i := len(r.Events) - 1; i >= 0; i-- {
		e := r.Events[i]
		if e.Node == c.Node && e.Syscall == c.Syscall {
			observed = short("", e.Result, e.Signal) + " " + shortDur(time.Duration(e.TMS*float64(time.Millisecond)))
			break
		}
	}
	if pr := r.ClientProgram; pr != nil {
		switch {
		case pr.TimedOut:
			observed = "client timed out"
		case pr.Stopped != "":
			observed = "client stopped"
		case pr.Signal != "":
			observed = "client " + pr.Signal
		case pr.Exit != nil:
			observed = fmt.Sprintf("client exit %d", *pr.Exit)
		}
	}
	if r.Verdict == experiments.Error {
		observed = "(error)"
	}
	return textbook, observed
}

func short(syscall, result, signal string) string {
	s := strings.TrimSpace(syscall + " " + result)
	if signal != "" {
		s += "+" + signal
	}
	return s
}

func shortDur(d time.Duration) string {
	switch {
	case d >= 2*time.Minute:
		return fmt.Sprintf("%.1fmin", d.Minutes())
	case d >= 10*time.Second:
		return fmt.Sprintf("%.0fs", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	return fmt.Sprintf("%dms", d.Milliseconds())
}

// Summary is the outcome of several runs of one case.
type Summary struct {
	Case    string         `json:"case"`
	Family  int            `json:"family"`
	Runs    int            `json:"runs"`
	Verdict map[string]int `json:"verdicts"`
	MinMS   float64        `json:"elapsed_min_ms"`
	MedMS   float64        `json:"elapsed_median_ms"`
	MaxMS   float64        `json:"elapsed_max_ms"`
}

// Summarise groups results by case and family, in first-seen order.
func Summarise(results []experiments.Result) []Summary {
	var out []Summary
	idx := map[string]int{}
	el := map[string][]float64{}
	for _, r := range results {
		key := caseName(r)
		i, ok := idx[key]
		if !ok {
			i = len(out)
			idx[key] = i
			out = append(out, Summary{Case: r.Case, Family: r.Family, Verdict: map[string]int{}})
		}
		out[i].Runs++
		out[i].Verdict[r.Verdict]++
		el[key] = append(el[key], r.ElapsedMS)
	}
	for i := range out {
		v := el[caseName(experiments.Result{Case: out[i].Case, Family: out[i].Family})]
		sort.Float64s(v)
		out[i].MinMS, out[i].MedMS, out[i].MaxMS = v[0], v[len(v)/2], v[len(v)-1]
	}
	return out
}

// SummaryTable writes the --count summary.
func SummaryTable(w io.Writer, sums []Summary) {
	fmt.Fprintf(w, "%-20s %-9s %-22s %s\n", "case", "match", "elapsed min/med/max", "other verdicts")
	fmt.Fprintf(w, "%s\n", strings.Repeat("-", 80))
	for _, s := range sums {
		var other []string
		for _, v := range []string{experiments.Mismatch, experiments.Error, experiments.Pass, experiments.Fail} {
			if s.Verdict[v] > 0 {
				other = append(other, fmt.Sprintf("%s %d", v, s.Verdict[v]))
			}
		}
		fmt.Fprintf(w, "%-20s %-9s %-22s %s\n", caseName(experiments.Result{Case: s.Case, Family: s.Family}), fmt.Sprintf("%d/%d", s.Verdict[experiments.Match], s.Runs),
			fmt.Sprintf("%s/%s/%s", shortDur(msDur(s.MinMS)), shortDur(msDur(s.MedMS)), shortDur(msDur(s.MaxMS))), strings.Join(other, ", "))
	}
}

func msDur(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

// programText reports what one of the user's programs did.
func programText(w io.Writer, label string, pr *experiments.Program) {
	field(w, label, fmt.Sprintf("`%s`: %s", pr.Cmd, programStatus(pr)))
	for _, l := range pr.StderrTail {
		fmt.Fprintf(w, "%-9s | %s\n", "", l)
	}
}

// caseName is the case id, marked /6 when it ran over IPv6.
func caseName(r experiments.Result) string {
	if r.Family == 6 {
		return r.Case + "/6"
	}
	return r.Case
}
