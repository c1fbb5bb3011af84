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
		Before:    needRoot,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("down takes exactly one lab name; `tcplab status` lists them")
			}
			id := c.Args().First()
			if err := topology.ValidateID(id); err != nil {
				return usageError(err)
			}
			_, serr := topology.ReadState(id)
			if errors.Is(serr, topology.ErrNoLab) && !topology.Exists(id) {
				return usagef("no lab %q; `tcplab status` lists the labs", id)
			}
			l, _ := topology.New(id)
			if err := l.Down(); err != nil {
				return usageError(err)
			}
			fmt.Fprintf(c.App.Writer, "lab %s removed\n", id)
			return nil
		},
	}
}
