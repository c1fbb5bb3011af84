package main

import (
	"fmt"

	"github.com/tcplab/tcplab/experiments"
	"github.com/urfave/cli/v2"
)

func listCommand() *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list the cases, each with a one-line summary",
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("list takes no arguments")
			}
			for _, k := range experiments.All() {
				fmt.Fprintf(c.App.Writer, "%-20s %s\n", k.ID, k.Summary)
			}
			return nil
		},
	}
}
