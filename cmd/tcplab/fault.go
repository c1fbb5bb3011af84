package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tcplab/tcplab/impair"
	"github.com/tcplab/tcplab/topology"
	"github.com/urfave/cli/v2"
)

// faults are what `tcplab fault` applies to a running lab: each the same
// operation the cases use. Rules match the client's TCP segments to the
// server (any port unless --port is given).
var faults = map[string]struct {
	help string
	do   func(l *topology.Lab, m impair.Match, grace time.Duration) error
}{
	"drop": {"the router silently drops the client's segments to the server", func(l *topology.Lab, m impair.Match, _ time.Duration) error {
		return impair.Drop(l, m)
	}},
	"reject-host": {"the router answers them with ICMP host-unreachable", func(l *topology.Lab, m impair.Match, _ time.Duration) error {
		return impair.Reject(l, m, impair.HostUnreachable)
	}},
	"reject-net": {"the router answers them with ICMP net-unreachable", func(l *topology.Lab, m impair.Match, _ time.Duration) error {
		return impair.Reject(l, m, impair.NetUnreachable)
	}},
	"reject-admin": {"the router answers them with ICMP admin-prohibited", func(l *topology.Lab, m impair.Match, _ time.Duration) error {
		return impair.Reject(l, m, impair.AdminProhibited)
	}},
	"reject-port": {"the router answers them with ICMP port-unreachable", func(l *topology.Lab, m impair.Match, _ time.Duration) error {
		return impair.Reject(l, m, impair.PortUnreachable)
	}},
	"link-down": {"the server's link goes down", func(l *topology.Lab, _ impair.Match, _ time.Duration) error {
		return impair.LinkDown(l)
	}},
	"link-up": {"the server's link comes back up", func(l *topology.Lab, _ impair.Match, _ time.Duration) error {
		return impair.LinkUp(l)
	}},
	"crash": {"the server host crashes silently (link down; the router never reports it)", func(l *topology.Lab, _ impair.Match, _ time.Duration) error {
		return impair.Crash(l)
	}},
	"crash-reported": {"the server host crashes and the router reports it (ICMP host-unreachable after ARP fails)", func(l *topology.Lab, _ impair.Match, _ time.Duration) error {
		return impair.CrashReported(l)
	}},
	"reboot": {"the server host reboots: its processes and TCP state are gone, it comes back with the same addresses", func(l *topology.Lab, _ impair.Match, _ time.Duration) error {
		return impair.Reboot(l, nil)
	}},
	"shutdown": {"the server host shuts down: SIGTERM to its processes, --grace, then SIGKILL", func(l *topology.Lab, _ impair.Match, grace time.Duration) error {
		_, err := impair.ShutdownNode(l.Server, grace)
		return err
	}},
}

func faultNames() []string {
	var n []string
	for k := range faults {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

func faultCommand() *cli.Command {
	var lines []string
	for _, n := range faultNames() {
		lines = append(lines, fmt.Sprintf("  %-15s %s", n, faults[n].help))
	}
	return &cli.Command{
		Name:      "fault",
		Usage:     "apply a fault to a lab left running by `tcplab up`, or --clear them",
		ArgsUsage: "NAME FAULT | NAME --clear",
		Description: "Faults:\n" + strings.Join(lines, "\n") + "\n" +
			"--clear removes every rule from the router and brings the server's link up.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "clear", Usage: "remove all faults"},
			&cli.IntFlag{Name: "port", Usage: "match only segments to this server `PORT` (drop and reject faults)"},
			&cli.BoolFlag{Name: "syn", Usage: "match only connection attempts, SYN without ACK (drop and reject faults)"},
			&cli.DurationFlag{Name: "grace", Value: 5 * time.Second, Usage: "shutdown grace period between SIGTERM and SIGKILL"},
		},
		Before: needRoot,
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			clear := c.Bool("clear")
			if (clear && len(args) != 1) || (!clear && len(args) != 2) {
				return usagef("usage: tcplab fault NAME FAULT, or tcplab fault NAME --clear; faults: %s", strings.Join(faultNames(), ", "))
			}
			port := c.Int("port")
			if port < 0 || port > 65535 {
				return usagef("--port %d: give a port from 1 to 65535", port)
			}
			if g := c.Duration("grace"); g < 0 || g > 10*time.Minute {
				return usagef("--grace %v: give a duration from 0s to 10m", g)
			}
			name := args[0]
			var f func(*topology.Lab, impair.Match, time.Duration) error
			if !clear {
				ft, ok := faults[args[1]]
				if !ok {
					return usagef("unknown fault %q; faults: %s", args[1], strings.Join(faultNames(), ", "))
				}
				f = ft.do
			}
			l, err := openLab(name)
			if err != nil {
				return err
			}
			if clear {
				if err := impair.Clear(l); err != nil {
					return usageError(err)
				}
				if err := impair.LinkUp(l); err != nil {
					return usageError(err)
				}
				fmt.Fprintf(c.App.Writer, "lab %s: faults cleared\n", name)
				return nil
			}
			m := impair.Match{Src: topology.ClientIP, Dst: topology.ServerIP, DstPort: uint16(port), SYN: c.Bool("syn")}
			if err := f(l, m, c.Duration("grace")); err != nil {
				return usageError(fmt.Errorf("fault %s on lab %s: %w", args[1], name, err))
			}
			fmt.Fprintf(c.App.Writer, "lab %s: %s\n", name, faults[args[1]].help)
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
