package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tcplab/tcplab/experiments"
	"github.com/tcplab/tcplab/report"
	"github.com/urfave/cli/v2"
)

func matrixCommand() *cli.Command {
	return &cli.Command{
		Name:  "matrix",
		Usage: "run every ICMP destination-unreachable code against a SYN and against data, in both families, and tabulate what the client sees",
		Description: "For each code the router can send (IPv4: net, host, protocol, port, net-prohibited,\n" +
			"host-prohibited, admin-prohibited; IPv6: no-route, admin-prohibited, beyond-scope,\n" +
			"address-unreachable, port-unreachable), three runs, each on its own lab:\n" +
			"  syn      the router answers the client's SYNs: connect's errno, when, how many SYNs;\n" +
			"  data     the router answers its data on an established connection: recv's errno, when;\n" +
			"  survive  the router stops after two ICMPs: does the data then get through?\n" +
			"Every cell is checked against its declared expectation.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print the cells as JSON"},
			&cli.StringFlag{Name: "family", Value: "both", Usage: "address family: 4, 6 or `both`"},
			&cli.IntFlag{Name: "parallel", Value: 12, Usage: "run up to `N` cells at once"},
			junitFlag(),
		},
		Before: needRoot,
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("matrix takes no arguments")
			}
			families, err := familiesOf(c)
			if err != nil {
				return err
			}
			p := c.Int("parallel")
			if p < 1 || p > 64 {
				return usagef("--parallel %d: give a number from 1 to 64", p)
			}
			junitPath, err := junitFile(c)
			if err != nil {
				return err
			}
			stop := onInterrupt()
			defer stop()
			started := time.Now()
			jobs := experiments.MatrixJobs(families)
			results := experiments.RunJobs(jobs, experiments.Config{}, p, nil)
			cells := make([]experiments.Cell, len(jobs))
			bad := false
			for i, j := range jobs {
				cells[i] = experiments.CellOf(j, results[i])
				bad = bad || cells[i].Verdict != experiments.Match
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				if err := enc.Encode(struct {
					Kernel string             `json:"kernel"`
					Cells  []experiments.Cell `json:"cells"`
				}{kernelRelease(), cells}); err != nil {
					return err
				}
			} else {
				matrixTable(c.App.Writer, cells)
			}
			if junitPath != "" {
				doc := report.Document{Tool: "tcplab", Version: version, Kernel: kernelRelease(), Results: results}
				if err := report.WriteJUnit(junitPath, doc, junitOptions("tcplab matrix", started)); err != nil {
					return cli.Exit(oneLine(err.Error()), exitMismatch)
				}
			}
			if bad {
				return cli.Exit("", exitMismatch)
			}
			return nil
		},
	}
}

// matrixTable prints one row per code: the SYN, data and survival cells.
func matrixTable(w io.Writer, cells []experiments.Cell) {
	fmt.Fprintf(w, "kernel %s\n\n", kernelRelease())
	fmt.Fprintf(w, "%-2s %-25s %-21s %-21s %s\n", "ip", "ICMP unreachable code", "SYN: connect", "data: recv", "survives")
	fmt.Fprintln(w, strings.Repeat("-", 80))
	type row struct{ syn, data, survive *experiments.Cell }
	rows := map[string]*row{}
	var order []string
	for i := range cells {
		c := &cells[i]
		key := fmt.Sprintf("%d %s (%d)", c.Family, c.Name, c.Code)
		if rows[key] == nil {
			rows[key] = &row{}
			order = append(order, key)
		}
		switch c.Phase {
		case experiments.PhaseSYN:
			rows[key].syn = c
		case experiments.PhaseData:
			rows[key].data = c
		default:
			rows[key].survive = c
		}
	}
	cell := func(c *experiments.Cell) string {
		if c == nil {
			return "-"
		}
		s := fmt.Sprintf("%s %.2fs ×%d", c.Errno, c.AfterMS/1000, c.Segments)
		if c.Verdict != experiments.Match {
			s += " !"
		}
		return s
	}
	var bad []string
	for _, k := range order {
		r := rows[k]
		surv := "-"
		if r.survive != nil && r.survive.Survives != nil {
			surv = map[bool]string{true: "yes", false: "no"}[*r.survive.Survives]
			if r.survive.Verdict != experiments.Match {
				surv += " !"
			}
		}
		fam, name, _ := strings.Cut(k, " ")
		fmt.Fprintf(w, "%-2s %-25s %-21s %-21s %s\n", fam, name, cell(r.syn), cell(r.data), surv)
		for _, c := range []*experiments.Cell{r.syn, r.data, r.survive} {
			if c != nil && c.Verdict != experiments.Match {
				bad = append(bad, fmt.Sprintf("%s %s: %s %s", k, c.Phase, c.Verdict, c.Detail))
			}
		}
	}
	fmt.Fprintln(w, "\nerrno, seconds after the fault, ×segments the client sent (SYNs; data and")
	fmt.Fprintln(w, "retransmissions); survives: the data got through once the router forwarded again")
	for _, b := range bad {
		fmt.Fprintln(w, "! "+b)
	}
}
