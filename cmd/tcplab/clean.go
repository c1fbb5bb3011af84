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
			"Labs made by `tcplab up`, and labs whose state file is corrupt (nothing says whose they are),\n" +
			"are kept unless --all is given; a lab that a running tcplab is building or running a case on\n" +
			"is always kept. A corrupt state file, kept or removed, gets a line on stderr and exit status 2.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Usage: "also remove labs made by `tcplab up`"},
		},
		Before: needRoot,
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("clean takes no arguments (use `tcplab down NAME` for one lab)")
			}
			var removed []topology.Removed
			var kept []topology.Removed
			err := shielded(func() error {
				var err error
				removed, kept, err = topology.CleanLabs(c.Bool("all"))
				return err
			})
			var notes []string
			for _, r := range removed {
				fmt.Fprintf(c.App.Writer, "removed lab %s\n", r.ID)
				if r.BadState != nil {
					notes = append(notes, oneLine(r.BadState.Error())+"; removed the lab anyway")
				}
			}
			for _, k := range kept {
				notes = append(notes, fmt.Sprintf("%s; kept it: `tcplab down %s` or `tcplab clean --all` removes it", oneLine(k.BadState.Error()), k.ID))
			}
			if err != nil {
				for _, n := range notes {
					fmt.Fprintln(os.Stderr, "tcplab: "+n)
				}
				return usageError(err)
			}
			if len(notes) > 0 {
				for _, n := range notes[:len(notes)-1] {
					fmt.Fprintln(os.Stderr, "tcplab: "+n)
				}
				return usagef("%s", notes[len(notes)-1])
			}
			if len(removed) == 0 {
				fmt.Fprintln(c.App.Writer, "nothing to clean")
			}
			return nil
		},
	}
}
