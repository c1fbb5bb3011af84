// Command kernels turns the JSON documents of `tcplab run all --family both
// --json`, one per kernel, into docs/kernels.md: per case and family what
// each kernel did (the decisive call, its errno and time, the packets
// counted), and every difference between kernels with the kernel change
// responsible, where it is known. Beside each RUN.json it reads
// RUN-matrix.json (`tcplab matrix --json`) when there is one, and the
// summary.txt that `make kernel-matrix` writes (each kernel and the time of
// each step).
//
//	go run ./scripts/kernels vagrant/results/kernels/*.json > docs/kernels.md
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tcplab/tcplab/experiments"
	"github.com/tcplab/tcplab/report"
)

// known explains differences between kernels by the kernel change
// responsible: keyed by case id, matched against the difference's text.
var known = []struct{ caseID, contains, why string }{
	{"", "error", "The case could not run on that kernel: see the error; a missing sysctl or feature is the usual cause."},
	{"", "tcp_syn_linear_timeouts", "net.ipv4.tcp_syn_linear_timeouts (Linux 6.5, commit ccce324dabfe) exists on kernels from 6.5 on only; tcplab sets it where it exists and " +
		"predicts the SYN schedule from it (see connect-timeout)."},
	{"", "for the fourth", "With tcp_syn_linear_timeouts (6.5) the fourth connection's SYN is retransmitted on a 1 s schedule, without it on a doubling one: " +
		"within the same time one more SYN on the newer kernel. The expectation follows the sysctl's presence."},
	{"connect-timeout", "SYN", "net.ipv4.tcp_syn_linear_timeouts (Linux 6.5, commit ccce324dabfe, \"tcp: make the first N SYN RTO backoffs linear\"): " +
		"the first four SYN retransmissions keep the 1 s timeout and the count allows four more. Before 6.5: SYNs at 0, 1, 3 s and ETIMEDOUT at 7 s " +
		"with tcp_syn_retries=2 (0, 1, 3, 7, 15, 31, 63 s and 127 s with the default 6); since: 0, 1, 2, 3, 4, 5 s and 7 s (131 s with the defaults). " +
		"tcplab reads whether the sysctl exists and predicts accordingly."},
	{"", "rto", "The RTO the kernel sets depends on the timer frequency (HZ) the kernel was built with: __tcp_set_rto rounds up to jiffies, " +
		"so 201 ms at HZ=1000, 204 ms at HZ=250, 210 ms at HZ=100; tcplab predicts from the RTO each connection reports (TCP_INFO)."},
}

type run struct {
	kernel string
	byKey  map[string]experiments.Result // case/family
	matrix []experiments.Cell            // nil when no matrix was run
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: go run ./scripts/kernels RUN.json... > docs/kernels.md")
		os.Exit(2)
	}
	var runs []run
	for _, path := range os.Args[1:] {
		b, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "kernels:", err)
			os.Exit(1)
		}
		var d report.Document
		if err := json.Unmarshal(b, &d); err != nil {
			fmt.Fprintf(os.Stderr, "kernels: %s: %v\n", path, err)
			os.Exit(1)
		}
		r := run{kernel: d.Kernel, byKey: map[string]experiments.Result{}}
		for _, res := range d.Results {
			r.byKey[key(res)] = res
		}
		if b, err := os.ReadFile(strings.TrimSuffix(path, ".json") + "-matrix.json"); err == nil {
			var m struct {
				Cells []experiments.Cell `json:"cells"`
			}
			if err := json.Unmarshal(b, &m); err != nil {
				fmt.Fprintf(os.Stderr, "kernels: matrix beside %s: %v\n", path, err)
				os.Exit(1)
			}
			r.matrix = m.Cells
		}
		runs = append(runs, r)
	}
	sort.SliceStable(runs, func(i, j int) bool { return versionLess(runs[i].kernel, runs[j].kernel) })
	write(os.Stdout, runs, os.Args[1:])
	writeMatrix(os.Stdout, runs)
	summary, err := os.ReadFile(filepath.Join(filepath.Dir(os.Args[1]), "summary.txt"))
	if err == nil && len(strings.TrimSpace(string(summary))) > 0 {
		fmt.Println()
		fmt.Println("## The runs")
		fmt.Println()
		fmt.Println("Each kernel, where it ran and the time of each step, as `make kernel-matrix` recorded them")
		fmt.Println("(`vagrant/results/kernels/summary.txt`):")
		fmt.Println()
		for _, l := range strings.Split(strings.TrimSpace(string(summary)), "\n") {
			fmt.Println("- " + l)
		}
	}
}

// writeMatrix adds the ICMP matrix (docs/icmp-matrix.md) as each kernel ran
// it: how many cells matched, and every cell whose outcome differs between
// kernels.
func writeMatrix(w io.Writer, runs []run) {
	var with []run
	for _, r := range runs {
		if r.matrix != nil {
			with = append(with, r)
		}
	}
	if len(with) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## The ICMP matrix")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "`tcplab matrix --json` on each kernel: every ICMP and ICMPv6 destination-unreachable code the router")
	fmt.Fprintln(w, "can send, in each phase ([icmp-matrix.md](icmp-matrix.md)).")
	fmt.Fprintln(w)
	for _, r := range with {
		n := 0
		for _, c := range r.matrix {
			if c.Verdict == experiments.Match {
				n++
			}
		}
		fmt.Fprintf(w, "- %s: %d of %d cells match\n", r.kernel, n, len(r.matrix))
	}
	type cellKey struct {
		family int
		name   string
		phase  string
	}
	outcome := func(c experiments.Cell) string {
		s := fmt.Sprintf("%s %s, %d segments", c.Verdict, orNone(c.Errno), c.Segments)
		if c.Survives != nil {
			s += fmt.Sprintf(", survives %v", *c.Survives)
		}
		return s
	}
	var keys []cellKey
	by := map[cellKey][]string{}
	for i, r := range with {
		for _, c := range r.matrix {
			k := cellKey{c.Family, c.Name, c.Phase}
			if _, ok := by[k]; !ok {
				keys = append(keys, k)
				by[k] = make([]string, len(with))
			}
			by[k][i] = outcome(c)
		}
	}
	var lines []string
	for _, k := range keys {
		vals := by[k]
		same := true
		for _, v := range vals {
			same = same && v == vals[0]
		}
		if same {
			continue
		}
		var parts []string
		for i, v := range vals {
			parts = append(parts, fmt.Sprintf("%s on %s", orNone(v), with[i].kernel))
		}
		lines = append(lines, fmt.Sprintf("- **IPv%d %s, %s phase**: %s", k.family, k.name, k.phase, strings.Join(parts, "; ")))
	}
	fmt.Fprintln(w)
	if len(lines) == 0 {
		fmt.Fprintln(w, "Every cell had the same verdict, errno and segment count on every kernel.")
		return
	}
	fmt.Fprintln(w, "Cells whose outcome differs between kernels:")
	fmt.Fprintln(w)
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

func key(r experiments.Result) string { return fmt.Sprintf("%s/IPv%d", r.Case, r.Family) }

// versionLess orders kernel releases numerically ("6.1.0-50" < "6.12.1").
func versionLess(a, b string) bool {
	num := func(s string) []int {
		var out []int
		for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r < '0' || r > '9' }) {
			n := 0
			fmt.Sscan(f, &n)
			out = append(out, n)
		}
		return out
	}
	x, y := num(a), num(b)
	for i := 0; i < len(x) && i < len(y); i++ {
		if x[i] != y[i] {
			return x[i] < y[i]
		}
	}
	return len(x) < len(y)
}

// cell is what one kernel did in one case: the verdict, the decisive
// call, and the packets counted.
func cell(r experiments.Result, ok bool) (short string, facts map[string]string) {
	if !ok {
		return "(not run)", nil
	}
	facts = map[string]string{}
	last := "-"
	for i := len(r.Events) - 1; i >= 0; i-- {
		if e := r.Events[i]; e.Node == "client" {
			// From the fault, or from the call when tcplab made it later:
			// a timer the call starts runs from there.
			last = strings.ReplaceAll(fmt.Sprintf("%s %s %s", e.Syscall, e.Result, fmtMS(min(e.TMS, e.DurationMS))), "|", "\\|")
			facts["call"] = e.Syscall + " " + e.Result
			break
		}
	}
	facts["verdict"] = r.Verdict
	if r.Verdict == experiments.Error {
		facts["error"] = r.Error
		return fmt.Sprintf("%s: %s", r.Verdict, last), facts
	}
	if len(r.Mismatches) > 0 {
		facts["mismatch"] = strings.Join(r.Mismatches, "; ")
	}
	for i, pc := range r.PacketChecks {
		// By position: a check's wording may follow the kernel (how many
		// SYNs it expects), its place does not.
		k := fmt.Sprintf("packet check %d", i+1)
		facts[k] = fmt.Sprint(pc.Got)
		facts[k+" want"] = pc.Want
		facts[k+" desc"] = pc.Desc
		if pc.OK {
			facts[k+" ok"] = "yes"
		}
	}
	for _, k := range r.Knobs {
		facts["knob "+k.Key] = k.Value
	}
	return fmt.Sprintf("%s: %s", r.Verdict, last), facts
}

func fmtMS(ms float64) string {
	if ms >= 1000 {
		return fmt.Sprintf("%.2f s", ms/1000)
	}
	return fmt.Sprintf("%.0f ms", ms)
}

func write(w io.Writer, runs []run, paths []string) {
	fmt.Fprintln(w, "# The catalogue on several kernels")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Generated by `go run ./scripts/kernels "+strings.Join(paths, " ")+"` from runs of")
	fmt.Fprintln(w, "`tcplab run all --family both --json`, one per kernel (`make kernel-matrix`")
	fmt.Fprintln(w, "makes them). Each cell: the verdict, then the client's last call, its result")
	fmt.Fprintln(w, "and when it returned after the fault (or after the call, when tcplab made the call")
	fmt.Fprintln(w, "after the fault: what a slow machine adds before the call is not the kernel's). Expectations follow the running kernel")
	fmt.Fprintln(w, "(which sysctls exist, the RTO each connection reports), so `match` on every")
	fmt.Fprintln(w, "kernel with different figures is what a kernel-aware tool should show.")
	fmt.Fprintln(w)
	var keys []string
	seen := map[string]bool{}
	for _, c := range experiments.All() {
		for _, fam := range []int{4, 6} {
			k := fmt.Sprintf("%s/IPv%d", c.ID, fam)
			for _, r := range runs {
				if _, ok := r.byKey[k]; ok && !seen[k] {
					seen[k] = true
					keys = append(keys, k)
				}
			}
		}
	}
	fmt.Fprint(w, "| case |")
	for _, r := range runs {
		fmt.Fprintf(w, " %s |", r.kernel)
	}
	fmt.Fprint(w, "\n|---|")
	for range runs {
		fmt.Fprint(w, "---|")
	}
	fmt.Fprintln(w)
	type diff struct{ key, what string }
	var diffs []diff
	for _, k := range keys {
		fmt.Fprintf(w, "| %s |", k)
		var all []map[string]string
		for _, r := range runs {
			res, ok := r.byKey[k]
			s, facts := cell(res, ok)
			fmt.Fprintf(w, " %s |", s)
			all = append(all, facts)
		}
		fmt.Fprintln(w)
		// What differs between kernels, fact by fact.
		var names []string
		union := map[string]bool{}
		for _, f := range all {
			for name := range f {
				if !union[name] {
					union[name] = true
					names = append(names, name)
				}
			}
		}
		sort.Strings(names)
		sort.Strings(names)
		errored := false
		for _, f := range all {
			errored = errored || (f != nil && f["error"] != "")
		}
		for _, name := range names {
			if strings.HasSuffix(name, " desc") || strings.HasSuffix(name, " ok") || strings.HasSuffix(name, " want") {
				continue
			}
			if errored && name != "verdict" && name != "error" {
				continue // a run that could not run says only why
			}
			var vals []string
			same := true
			for i, f := range all {
				if f == nil {
					same = false
					continue
				}
				if f[name] != all[0][name] {
					same = false
				}
				v := orNone(f[name])
				if w := f[name+" want"]; w != "" {
					v += " (want " + w + ")"
				}
				vals = append(vals, fmt.Sprintf("%s on %s", v, runs[i].kernel))
			}
			if same {
				continue
			}
			what := name + ": " + strings.Join(vals, ", ")
			if strings.HasPrefix(name, "packet check") && !strings.HasSuffix(name, " want") {
				// Counted within what the check allows everywhere, and with
				// the same expectation: the run's timing, not the kernel.
				allOK, sameWant := true, true
				for _, f := range all {
					allOK = allOK && f != nil && f[name+" ok"] == "yes"
					sameWant = sameWant && f != nil && f[name+" want"] == all[0][name+" want"]
				}
				if allOK && sameWant {
					continue
				}
				desc := ""
				for _, f := range all {
					if f != nil && f[name+" desc"] != "" {
						desc = f[name+" desc"]
						break
					}
				}
				what = desc + ": " + strings.Join(vals, ", ")
			}
			diffs = append(diffs, diff{k, what})
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Differences between kernels")
	fmt.Fprintln(w)
	if len(diffs) == 0 {
		fmt.Fprintln(w, "None: every kernel made the same calls, got the same results and showed the same packet counts.")
		return
	}
	for _, d := range diffs {
		why := "not explained yet"
		for _, kn := range known {
			if (kn.caseID == "" || strings.HasPrefix(d.key, kn.caseID+"/")) && strings.Contains(d.what, kn.contains) {
				why = kn.why
				break
			}
		}
		fmt.Fprintf(w, "- **%s**, %s. %s\n", d.key, d.what, why)
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
