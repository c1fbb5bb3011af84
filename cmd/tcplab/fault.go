package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/tcplab/tcplab/experiments"
	"github.com/tcplab/tcplab/impair"
	"github.com/tcplab/tcplab/topology"
	"github.com/urfave/cli/v2"
)

func faultCommand() *cli.Command {
	var lines []string
	for _, f := range impair.Faults() {
		lines = append(lines, fmt.Sprintf("  %-15s %s", f.Name, f.Help))
	}
	names := strings.Join(impair.Names(), ", ")
	return &cli.Command{
		Name:      "fault",
		Usage:     "apply a fault to a lab left running by `tcplab up`, or --clear them",
		ArgsUsage: "NAME FAULT | NAME --clear",
		Description: "Faults:\n" + strings.Join(lines, "\n") + "\n" +
			"Rules match the client's TCP segments to the server, in both families unless --family is given.\n" +
			"--clear removes every rule from the router, restores its link MTU and connection-tracking timeout, and brings the server's link up.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "clear", Usage: "remove all faults"},
			&cli.IntFlag{Name: "port", Usage: "match only segments to this server `PORT` (drop and reject faults)"},
			&cli.BoolFlag{Name: "syn", Usage: "match only connection attempts, SYN without ACK (drop and reject faults)"},
			&cli.IntFlag{Name: "family", Usage: "match only IPv`N` segments, 4 or 6 (drop and reject faults; default both)"},
			&cli.DurationFlag{Name: "grace", Value: experiments.DefaultGrace, Usage: "shutdown grace period between SIGTERM and SIGKILL"},
			&cli.DurationFlag{Name: "timeout", Usage: "stateful: forget an established connection idle for `D` (default the kernel's, 5 days)"},
			&cli.IntFlag{Name: "mtu", Usage: "mtu: the router's link to the server carries `N` bytes (default 1280)"},
		},
		Before: needRoot,
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			clear := c.Bool("clear")
			if (clear && len(args) != 1) || (!clear && len(args) != 2) {
				return usagef("usage: tcplab fault NAME FAULT, or tcplab fault NAME --clear; faults: %s", names)
			}
			port := c.Int("port")
			if port < 0 || port > 65535 {
				return usagef("--port %d: give a port from 1 to 65535", port)
			}
			if fam := c.Int("family"); fam != 0 && fam != 4 && fam != 6 {
				return usagef("--family %d: give 4 or 6", fam)
			}
			if g := c.Duration("grace"); g < 0 || g > 10*time.Minute {
				return usagef("--grace %v: give a duration from 0s to 10m", g)
			}
			if d := c.Duration("timeout"); d < 0 || d > 24*time.Hour {
				return usagef("--timeout %v: give a duration from 1s to 24h", d)
			}
			if m := c.Int("mtu"); m != 0 && (m < 576 || m > 1500) {
				return usagef("--mtu %d: give an MTU from 576 to 1500", m)
			}
			name := args[0]
			var f impair.Fault
			if !clear {
				var err error
				if f, err = impair.Lookup(args[1]); err != nil {
					return usageError(err)
				}
			}
			l, err := openLab(name)
			if err != nil {
				return err
			}
			if clear {
				if err := impair.ClearAll(l); err != nil {
					return usageError(err)
				}
				fmt.Fprintf(c.App.Writer, "lab %s: faults cleared\n", name)
				return nil
			}
			o := impair.Options{Family: c.Int("family"), Port: uint16(port), SYN: c.Bool("syn"), Grace: c.Duration("grace"), Timeout: c.Duration("timeout"), MTU: c.Int("mtu")}
			if _, err := f.Apply(l, o); err != nil {
				return usageError(fmt.Errorf("lab %s: %w", name, err))
			}
			fmt.Fprintf(c.App.Writer, "lab %s: %s: %s\n", name, f.Name, f.Describe(o))
			return nil
		},
	}
}

// openLab opens a usable lab by name (topology.Open), with the CLI's errors.
func openLab(name string) (*topology.Lab, error) {
	if err := topology.ValidateID(name); err != nil {
		return nil, usageError(err)
	}
	l, _, err := topology.Open(name)
	if err != nil {
		return nil, usageError(err)
	}
	return l, nil
}
