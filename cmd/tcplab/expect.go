package main

import (
	"strings"
	"time"

	"github.com/tcplab/tcplab/experiments"
	"github.com/urfave/cli/v2"
)

// expectFlags are run's expectations about the user's own programs: with
// any, the verdict is pass or fail instead of observed.
func expectFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "expect-exit", Usage: "your client must end so: a status `CODE` (0-255), zero, nonzero, signal:NAME (signal:KILL), or running (still running at its timeout)"},
		&cli.StringFlag{Name: "expect-within", Usage: "your client must have ended within `D` of the fault (e.g. 5s); still running then, it is stopped and fails"},
		&cli.StringFlag{Name: "expect-stdout", Usage: "your client's standard output (its last 64 KiB) must match `REGEX` (Go syntax)"},
		&cli.StringFlag{Name: "expect-stderr", Usage: "your client's standard error (its last 64 KiB) must match `REGEX`"},
		&cli.StringFlag{Name: "expect-server-exit", Usage: "your server must end so: `CODE`, zero, nonzero, signal:NAME, or running (still running when the run ended)"},
		&cli.StringFlag{Name: "expect-server-stdout", Usage: "your server's standard output (its last 64 KiB) must match `REGEX`"},
		&cli.StringFlag{Name: "expect-server-stderr", Usage: "your server's standard error (its last 64 KiB) must match `REGEX`"},
	}
}

// expectations reads the expectation flags. Every error is a usage error,
// found before any lab is built.
func expectations(c *cli.Context) (experiments.Expect, error) {
	var e experiments.Expect
	exit := func(flag string, dst **experiments.ExitSpec) error {
		if !c.IsSet(flag) {
			return nil
		}
		x, err := experiments.ParseExit(c.String(flag))
		if err != nil {
			return usagef("--%s: %v", flag, err)
		}
		*dst = &x
		return nil
	}
	pattern := func(flag string, dst **experiments.Pattern) error {
		if !c.IsSet(flag) {
			return nil
		}
		p, err := experiments.ParsePattern(c.String(flag))
		if err != nil {
			return usagef("--%s: %v", flag, err)
		}
		*dst = p
		return nil
	}
	for _, err := range []error{
		exit("expect-exit", &e.ClientExit),
		exit("expect-server-exit", &e.ServerExit),
		pattern("expect-stdout", &e.ClientStdout),
		pattern("expect-stderr", &e.ClientStderr),
		pattern("expect-server-stdout", &e.ServerStdout),
		pattern("expect-server-stderr", &e.ServerStderr),
	} {
		if err != nil {
			return e, err
		}
	}
	if c.IsSet("expect-within") {
		s := strings.TrimSpace(c.String("expect-within"))
		d, err := time.ParseDuration(s)
		if err != nil {
			return e, usagef("--expect-within %q: not a duration: give e.g. 500ms, 5s or 1m30s", s)
		}
		if d <= 0 || d > 24*time.Hour {
			return e, usagef("--expect-within %v: give a duration from 1ms to 24h", d)
		}
		e.ClientWithin = d
	}
	for _, f := range []struct{ flag, program string }{
		{"expect-exit", "client-cmd"}, {"expect-within", "client-cmd"}, {"expect-stdout", "client-cmd"}, {"expect-stderr", "client-cmd"},
		{"expect-server-exit", "server-cmd"}, {"expect-server-stdout", "server-cmd"}, {"expect-server-stderr", "server-cmd"},
	} {
		if c.IsSet(f.flag) && !c.IsSet(f.program) {
			return e, usagef("--%s is about your %s program: give --%s too", f.flag, strings.TrimSuffix(f.program, "-cmd"), f.program)
		}
	}
	return e, nil
}

// verdictFails tells whether a verdict makes tcplab exit 1.
func verdictFails(v string) bool {
	switch v {
	case experiments.Match, experiments.Observed, experiments.Pass:
		return false
	}
	return true
}
