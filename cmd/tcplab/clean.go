package main

import (
	"fmt"

	"github.com/tcplab/tcplab/topology"
	"github.com/urfave/cli/v2"
)

func cleanCommand() *cli.Command {
	return &cli.Command{
		Name:  "clean",
		Usage: "remove what labs of dead tcplab processes left behind (namespaces, links, processes, state files)",
		Description: "Leftovers are found by lab id: namespaces named tcplab-ID-*, state files under " + topology.StateDir + ".\n" +
			"Labs made by `tcplab up` and labs of running tcplab processes are kept unless --all is given.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Usage: "also remove labs made by `tcplab up`"},
		},
		Before: needRoot,
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("clean takes no arguments (use `tcplab down NAME` for one lab)")
			}
			removed, err := topology.Clean(c.Bool("all"))
			for _, id := range removed {
				fmt.Fprintf(c.App.Writer, "removed lab %s\n", id)
			}
			if err != nil {
				return usageError(err)
			}
			if len(removed) == 0 {
				fmt.Fprintln(c.App.Writer, "nothing to clean")
			}
			return nil
		},
	}
}
