package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tcplab/tcplab/experiments"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

func explainCommand() *cli.Command {
	return &cli.Command{
		Name:      "explain",
		Usage:     "explain a case without running it: textbook, Linux expectation and why they differ",
		ArgsUsage: "[CASE... | all]",
		Description: "Prints the case's trigger, the textbook's account, what Linux is expected to do\n" +
			"(calls and time windows) with tcplab's shortened timers and with the kernel's own\n" +
			"(--kernel-defaults), and why Linux differs. Runs nothing and needs no root.\n" +
			"With no case, lists the cases.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print the explanations as a JSON array"},
		},
		Action: explainAction,
	}
}

// explanation is what explain shows of a case.
type explanation struct {
	ID       string    `json:"case"`
	Title    string    `json:"title"`
	Summary  string    `json:"summary"`
	Trigger  string    `json:"trigger"`
	Textbook account   `json:"textbook"`
	Linux    []linuxAt `json:"linux"`
	Why      string    `json:"why"`
}

type account struct {
	Summary string   `json:"summary"`
	Calls   []string `json:"calls"`
}

// linuxAt is the Linux expectation under one choice of timers.
type linuxAt struct {
	KernelDefaults bool     `json:"kernel_defaults"`
	Knobs          []string `json:"knobs"`
	Basis          string   `json:"basis"`
	account
}

// explanationOf reads a case from the catalogue. Every use of the case's
// fields is here, so a change to experiments.Case is adapted in one place.
func explanationOf(c *experiments.Case) explanation {
	tb := c.TextbookAccount()
	e := explanation{
		ID: c.ID, Title: c.Title, Summary: c.Summary, Trigger: c.Trigger, Why: c.Why,
		Textbook: account{Summary: tb.Summary, Calls: []string{}},
	}
	for _, call := range tb.Calls {
		e.Textbook.Calls = append(e.Textbook.Calls, call.String())
	}
	for _, kd := range []bool{false, true} {
		s := c.SettingsFor(experiments.Config{KernelDefaults: kd}.Complete()).Predict(experiments.Measured{})
		l := c.LinuxAccount(s)
		at := linuxAt{KernelDefaults: kd, Knobs: []string{}, Basis: s.Basis, account: account{Summary: l.Summary, Calls: []string{}}}
		for _, k := range s.Knobs {
			at.Knobs = append(at.Knobs, k.String())
		}
		for _, call := range l.Calls {
			at.Calls = append(at.Calls, call.String())
		}
		e.Linux = append(e.Linux, at)
	}
	return e
}

func explainAction(c *cli.Context) error {
	var cases []*experiments.Case
	seen := map[*experiments.Case]bool{}
	for _, a := range c.Args().Slice() {
		ks, group := experiments.Group(a)
		if !group {
			k, err := experiments.Lookup(a)
			if err != nil {
				return usageError(err)
			}
			ks = []*experiments.Case{k}
		}
		for _, k := range ks {
			if !seen[k] {
				seen[k] = true
				cases = append(cases, k)
			}
		}
	}
	out := c.App.Writer
	if len(cases) == 0 {
		if c.Bool("json") {
			return usagef("explain --json needs a case, or all")
		}
		for _, k := range experiments.All() {
			e := explanationOf(k)
			fmt.Fprintf(out, "%-20s %s\n", e.ID, e.Summary)
		}
		fmt.Fprintln(out, "\ntcplab explain CASE explains one.")
		return nil
	}
	var all []explanation
	for _, k := range cases {
		all = append(all, explanationOf(k))
	}
	if c.Bool("json") {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(all)
	}
	w := textWidth(out)
	for i, e := range all {
		if i > 0 {
			fmt.Fprintln(out)
		}
		writeExplanation(out, e, w)
	}
	return nil
}

func writeExplanation(out io.Writer, e explanation, width int) {
	para := func(indent, text string) { fmt.Fprint(out, wrapText(text, indent, indent, width)) }
	item := func(indent, text string) { fmt.Fprint(out, wrapText(text, indent+"- ", indent+"  ", width)) }
	head := func(h string) { fmt.Fprintln(out); fmt.Fprintln(out, h) }

	para("", e.ID+": "+e.Title)
	para("  ", e.Summary)
	head("Trigger")
	para("  ", e.Trigger)
	head("Textbook (Stevens, UNIX Network Programming)")
	para("  ", e.Textbook.Summary)
	for _, call := range e.Textbook.Calls {
		item("  ", call)
	}
	for _, l := range e.Linux {
		if l.KernelDefaults {
			head("Linux, with the kernel's own timers (--kernel-defaults)")
		} else {
			head("Linux, with tcplab's shortened timers (the default)")
		}
		// The summary often spells out the basis already.
		timers := strings.Join(l.Knobs, ", ")
		if l.Basis != "" && !strings.Contains(l.Summary, l.Basis) {
			timers = strings.TrimPrefix(timers+"; "+l.Basis, "; ")
		}
		if timers != "" {
			para("  ", "Timers: "+timers+".")
		}
		para("  ", l.Summary)
		for _, call := range l.Calls {
			item("  ", call)
		}
	}
	head("Why Linux differs")
	if e.Why == "" {
		para("  ", "It does not: Linux does what the textbook says.")
	} else {
		para("  ", e.Why)
	}
}

// textWidth is 80 columns, or a narrower terminal's width.
func textWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col >= 40 && ws.Col < 80 {
			return int(ws.Col)
		}
	}
	return 80
}

// wrapText fills text into lines of at most width columns, the first
// starting with first and the others with rest. A word longer than a line
// stands alone on it.
func wrapText(text, first, rest string, width int) string {
	var b strings.Builder
	line, n := first, len([]rune(first))
	empty := true
	for _, word := range words(text) {
		wl := len([]rune(word))
		if !empty && n+1+wl > width {
			b.WriteString(line + "\n")
			line, n, empty = rest, len([]rune(rest)), true
		}
		if !empty {
			line += " "
			n++
		}
		line += word
		n += wl
		empty = false
	}
	b.WriteString(line + "\n")
	return b.String()
}

// words splits text at spaces, keeping a number with its unit ("200 ms").
func words(text string) []string {
	var out []string
	for _, w := range strings.Fields(text) {
		if i := len(out) - 1; i >= 0 && unit[strings.TrimRight(w, ".,;:)")] && strings.ContainsAny(out[i][len(out[i])-1:], "0123456789") {
			out[i] += " " + w
			continue
		}
		out = append(out, w)
	}
	return out
}

var unit = map[string]bool{"ms": true, "s": true, "min": true}
