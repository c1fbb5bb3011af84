package main

import (
	"fmt"
	"os"

	"github.com/tcplab/tcplab/topology"
	"github.com/urfave/cli/v2"
)

func cleanCommand() *cli.Command {
	return &cli.Command{
		Name:  "clean",
		Usage: "remove what labs of dead tcplab processes left behind (namespaces, links, processes, state files)",
		Description: "Leftovers are found by lab id: namespaces named tcplab-ID-*, state files under " + topology.StateDir + ".\n" +
			"Labs made by `tcplab up` and labs of running tcplab processes are kept unless --all is given;\n" +
			"a lab a running tcplab is still building or running a case on is always kept. A lab whose\n" +
			"state file is corrupt is removed, with exit status 2 and a line saying so.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Usage: "also remove labs made by `tcplab up`"},
		},
		Before: needRoot,
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("clean takes no arguments (use `tcplab down NAME` for one lab)")
			}
			var removed []topology.Removed
			err := shielded(func() error {
				var err error
				removed, err = topology.CleanLabs(c.Bool("all"))
				return err
			})
			var bad []error
			for _, r := range removed {
				fmt.Fprintf(c.App.Writer, "removed lab %s\n", r.ID)
				if r.BadState != nil {
					bad = append(bad, r.BadState)
				}
			}
			if err != nil {
				return usageError(err)
			}
			if len(bad) > 0 {
				for _, b := range bad[:len(bad)-1] {
					fmt.Fprintln(os.Stderr, "tcplab: "+oneLine(b.Error())+"; removed the lab anyway")
				}
				return usagef("%v; removed the lab anyway", bad[len(bad)-1])
			}
			if len(removed) == 0 {
				fmt.Fprintln(c.App.Writer, "nothing to clean")
			}
			return nil
		},
	}
}
