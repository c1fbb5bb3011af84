package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tcplab/tcplab/experiments"
	"github.com/tcplab/tcplab/report"
	"github.com/tcplab/tcplab/topology"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run cases (or a group: all, first, second) and report textbook, Linux expectation, observation and verdict",
		ArgsUsage: "CASE... | all | first | second",
		Description: "Each case gets its own lab, built before and removed after it.\n" +
			"With --client-cmd or --server-cmd the verdict is observed; with an --expect-... flag as well, pass or fail.\n" +
			"Exit status: 0 when every verdict is match, observed or pass, 1 otherwise, 2 for usage or environment errors.",
		Flags: append([]cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON document on stdout instead of the text report"},
			&cli.IntFlag{Name: "count", Value: 1, Usage: "run each case `N` times and summarise verdicts and times"},
			&cli.IntFlag{Name: "parallel", Value: 16, Usage: "run up to `N` cases at once, each on its own lab (reports still print in catalogue order)"},
			&cli.StringFlag{Name: "family", Value: "4", Usage: "address family of the connections: `4`, 6 or both"},
			&cli.BoolFlag{Name: "6", Usage: "run over IPv6 (same as --family 6)"},
			&cli.BoolFlag{Name: "kernel-defaults", Usage: "run with the kernel's own timers (minutes per case) instead of shortened ones"},
			&cli.StringFlag{Name: "server-cmd", Usage: "run `CMD` (through /bin/sh -c, in the server) as the server instead of the built-in one"},
			&cli.StringFlag{Name: "client-cmd", Usage: "run `CMD` (through /bin/sh -c, in the client) as the client instead of the built-in one"},
			&cli.DurationFlag{Name: "client-timeout", Value: experiments.DefaultClientTimeout, Usage: "stop a --client-cmd still running after `D`"},
			&cli.BoolFlag{Name: "no-capture", Usage: "capture no packets: verdicts rest on the calls alone (no packet checks, timeline of packets or pcap files)"},
			&cli.StringFlag{Name: "pcap", Usage: "write one pcap file per capture point per case run into `DIR` (created if missing)"},
			&cli.StringFlag{Name: "html", Usage: "also write the whole run as one self-contained HTML report to `FILE`"},
			&cli.DurationFlag{Name: "grace", Value: experiments.DefaultGrace, Usage: "shutdown grace period between SIGTERM and SIGKILL (host-shutdown)"},
			junitFlag(),
		}, expectFlags()...),
		Before: needRoot,
		Action: runAction,
	}
}

func runAction(c *cli.Context) error {
	cases, err := selectCases(c.Args().Slice())
	if err != nil {
		return err
	}
	count := c.Int("count")
	if count < 1 || count > 10000 {
		return usagef("--count %d: give a number from 1 to 10000", count)
	}
	parallel := c.Int("parallel")
	if parallel < 1 || parallel > 64 {
		return usagef("--parallel %d: give a number from 1 to 64", parallel)
	}
	grace := c.Duration("grace")
	if grace < 0 || grace > 10*time.Minute {
		return usagef("--grace %v: give a duration from 0s to 10m", grace)
	}
	pcapDir := c.String("pcap")
	if c.IsSet("pcap") {
		if pcapDir == "" {
			return usagef("--pcap needs a directory")
		}
		if err := report.PcapDir(pcapDir); err != nil {
			return usageError(err)
		}
	}
	if pcapDir != "" && c.Bool("no-capture") {
		return usagef("--pcap and --no-capture exclude each other")
	}
	htmlPath := c.String("html")
	if c.IsSet("html") {
		if htmlPath == "" {
			return usagef("--html needs a file name")
		}
		if err := report.HTMLPath(htmlPath); err != nil {
			return usageError(err)
		}
	}
	junitPath, err := junitFile(c)
	if err != nil {
		return err
	}
	expect, err := expectations(c)
	if err != nil {
		return err
	}
	cfg := experiments.Config{KernelDefaults: c.Bool("kernel-defaults"), Grace: grace, NoCapture: c.Bool("no-capture")}
	if c.IsSet("server-cmd") || c.IsSet("client-cmd") {
		b := experiments.BYO{ServerCmd: c.String("server-cmd"), ClientCmd: c.String("client-cmd"), ClientTimeout: c.Duration("client-timeout"), Expect: expect}
		if (c.IsSet("server-cmd") && strings.TrimSpace(b.ServerCmd) == "") || (c.IsSet("client-cmd") && strings.TrimSpace(b.ClientCmd) == "") {
			return usagef("--server-cmd and --client-cmd need a command")
		}
		if b.ClientTimeout <= 0 || b.ClientTimeout > 24*time.Hour {
			return usagef("--client-timeout %v: give a duration from 1ms to 24h", b.ClientTimeout)
		}
		for _, k := range cases {
			if err := experiments.CheckBYO(k, b); err != nil {
				return usageError(err)
			}
		}
		cfg.BYO = &b
	}
	if grace == 0 {
		cfg.Grace = time.Nanosecond // SIGKILL straight after SIGTERM
	}
	started := time.Now()
	out := c.App.Writer
	live := newProgress(os.Stderr)
	cfg.Progress = live.update
	stop := onInterrupt()
	defer stop()

	families, err := familiesOf(c)
	if err != nil {
		return err
	}
	var jobs []experiments.Job
	for _, k := range cases {
		for _, f := range families {
			for range count {
				jobs = append(jobs, experiments.Job{Case: k, Family: f})
			}
		}
	}
	var pcapErr error
	results := experiments.RunJobs(jobs, cfg, parallel, func(r experiments.Result) {
		live.clear()
		if topology.ShuttingDown() {
			return // interrupted: the teardown, not the case, ended it
		}
		if pcapDir != "" {
			if _, err := report.WritePcaps(pcapDir, r); err != nil && pcapErr == nil {
				pcapErr = err
			}
		}
		if !c.Bool("json") && (count == 1 || verdictFails(r.Verdict)) {
			report.TextWith(out, r, report.TextOptions{Color: report.WantColor(out)})
		}
	})
	if c.Bool("json") {
		doc := report.Document{Tool: "tcplab", Version: version, Kernel: kernelRelease(), Results: results}
		if count > 1 {
			doc.Summary = report.Summarise(results)
		}
		if err := report.JSON(out, doc); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(out, "kernel %s\n\n", kernelRelease())
		if count > 1 {
			report.SummaryTable(out, report.Summarise(results))
		} else {
			report.Matrix(out, results)
		}
	}
	if htmlPath != "" {
		doc := report.Document{Tool: "tcplab", Version: version, Kernel: kernelRelease(), Results: results}
		if err := report.WriteHTML(htmlPath, doc); err != nil {
			return cli.Exit(oneLine(err.Error()), exitMismatch)
		}
	}
	if junitPath != "" {
		doc := report.Document{Tool: "tcplab", Version: version, Kernel: kernelRelease(), Results: results}
		if err := report.WriteJUnit(junitPath, doc, junitOptions("tcplab run", started)); err != nil {
			return cli.Exit(oneLine(err.Error()), exitMismatch)
		}
	}
	if pcapErr != nil {
		return cli.Exit(pcapErr.Error(), exitMismatch)
	}
	for _, r := range results {
		if verdictFails(r.Verdict) {
			return cli.Exit("", exitMismatch)
		}
	}
	return nil
}

// selectCases resolves the arguments to cases, `all` meaning every case.
func selectCases(args []string) ([]*experiments.Case, error) {
	if len(args) == 0 {
		return nil, usagef("name at least one case, or all; `tcplab list` shows them")
	}
	var out []*experiments.Case
	seen := map[string]bool{}
	for _, a := range args {
		if group, ok := experiments.Group(a); ok {
			for _, k := range group {
				if !seen[k.ID] {
					seen[k.ID] = true
					out = append(out, k)
				}
			}
			continue
		}
		k, err := experiments.Lookup(a)
		if err != nil {
			return nil, usageError(err)
		}
		if !seen[k.ID] {
			seen[k.ID] = true
			out = append(out, k)
		}
	}
	return out, nil
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// onInterrupt tears down this process's labs on SIGINT, SIGTERM or SIGHUP,
// or on SIGPIPE once standard output is gone (`tcplab run all | head`), and
// exits 128 plus the signal's number (130, 143, 129, 141), however far the
// labs got (topology.Shutdown). Further signals during the teardown are
// absorbed, so a second Ctrl-C cannot leave a half-removed lab. Once a
// signal has been taken, stop does not return: the exit is the signal's. A
// signal tcplab was started with ignored (nohup, `cmd &` in a script) stays
// ignored. stop is for the end of a command, just before the process exits:
// the signals stay caught, and are ignored, until the exit (see shielded).
func onInterrupt() (stop func()) {
	sigs := notIgnored(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	if len(sigs) == 0 {
		return func() {}
	}
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, sigs...)
	var st interruptState
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-ch:
				// A write to an agent that has died raises SIGPIPE too:
				// only a reader of the output going away ends the run.
				if s == syscall.SIGPIPE && !outputGone() {
					continue
				}
				if !st.take() {
					return // the run is over
				}
				fmt.Fprintf(os.Stderr, "\ntcplab: %v: removing the lab...\n", s)
				if err := topology.Shutdown(); err != nil {
					fmt.Fprintln(os.Stderr, "tcplab: "+oneLine(err.Error()))
				}
				os.Exit(signalStatus(s))
			case <-done:
				return
			}
		}
	}()
	return func() {
		if !st.stop() {
			select {} // the handler exits the process
		}
		close(done)
	}
}

// progress draws a live line on a terminal while a case waits on a kernel
// timer. On anything but a terminal it does nothing.
type progress struct {
	w     io.Writer
	tty   bool
	drawn bool
}

func newProgress(f *os.File) *progress {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return &progress{w: f, tty: err == nil}
}

func (p *progress) update(id string, elapsed, predicted time.Duration) {
	if !p.tty || elapsed < 500*time.Millisecond {
		return
	}
	line := fmt.Sprintf("  %s: %.1f s", id, elapsed.Seconds())
	if predicted > 0 {
		line += fmt.Sprintf(" of a predicted %.1f s", predicted.Seconds())
	}
	fmt.Fprintf(p.w, "\r%-70s", line)
	p.drawn = true
}

func (p *progress) clear() {
	if p.drawn {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", 70))
		p.drawn = false
	}
}

// familiesOf reads --family and -6.
func familiesOf(c *cli.Context) ([]int, error) {
	f := c.String("family")
	if c.Bool("6") {
		if c.IsSet("family") && f != "6" {
			return nil, usagef("-6 and --family %s disagree", f)
		}
		f = "6"
	}
	switch f {
	case "4":
		return []int{4}, nil
	case "6":
		return []int{6}, nil
	case "both":
		return []int{4, 6}, nil
	}
	return nil, usagef("--family %q: give 4, 6 or both", f)
}
