package main

import (
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
			st, err := topology.Inspect(id)
			if err != nil {
				return usageError(err)
			}
			if err := st.MayDown(); err != nil {
				return usageError(err)
			}
			err = shielded(func() error {
				l, _ := topology.New(id)
				return l.Down()
			})
			if err != nil {
				return usageError(err)
			}
			if note := st.RemovedNote(); note != nil {
				return usageError(note)
			}
			fmt.Fprintf(c.App.Writer, "lab %s removed\n", id)
			return nil
		},
	}
}
