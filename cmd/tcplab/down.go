package main

import (
	"errors"
	"fmt"

	"github.com/tcplab/tcplab/topology"
	"github.com/urfave/cli/v2"
)

func downCommand() *cli.Command {
	return &cli.Command{
		Name:      "down",
		Usage:     "remove a lab: its processes, namespaces, links and state",
		ArgsUsage: "NAME",
		Description: "A lab whose state file is corrupt, or whose namespaces are gone, is removed all the same,\n" +
			"with exit status 2 and a line saying what was wrong. A lab that a running tcplab is still\n" +
			"building or running a case on is left to that process.",
		Before: needRoot,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("down takes exactly one lab name; `tcplab status` lists them")
			}
			id := c.Args().First()
			if err := topology.ValidateID(id); err != nil {
				return usageError(err)
			}
			s, serr := topology.ReadState(id)
			exists := topology.Exists(id)
			switch {
			case errors.Is(serr, topology.ErrNoLab) && !exists:
				return usagef("no lab %q; `tcplab status` lists the labs", id)
			case errors.Is(serr, topology.ErrNoLab), errors.Is(serr, topology.ErrBadState):
				// A leftover, or a lab whose record cannot be trusted:
				// removed by its name alone.
			case serr != nil:
				return usageError(serr)
			case s.OwnerAlive() && !s.Ready:
				return usagef("lab %q is still being built by tcplab (pid %d); remove it once that is done", id, s.PID)
			case s.OwnerAlive() && s.Kind == topology.KindRun:
				return usagef("lab %q belongs to `tcplab run` (pid %d), which removes it when its case ends; interrupt that process to end it sooner", id, s.PID)
			}
			err := shielded(func() error {
				l, _ := topology.New(id)
				return l.Down()
			})
			if err != nil {
				return usageError(err)
			}
			switch {
			case errors.Is(serr, topology.ErrBadState):
				return usagef("%v; removed the lab and the state file anyway", serr)
			case serr == nil && !exists:
				return usagef("lab %q no longer existed (its namespaces were gone); removed its stale state file", id)
			}
			fmt.Fprintf(c.App.Writer, "lab %s removed\n", id)
			return nil
		},
	}
}
