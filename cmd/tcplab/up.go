package main

import (
	"errors"
	"fmt"

	"github.com/tcplab/tcplab/experiments"
	"github.com/tcplab/tcplab/topology"
	"github.com/urfave/cli/v2"
)

func upCommand() *cli.Command {
	return &cli.Command{
		Name:  "up",
		Usage: "build a lab and leave it running (remove it with `tcplab down NAME`)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "name", Usage: fmt.Sprintf("lab `NAME`: lower-case letters, digits and '-', at most %d characters (default: random)", topology.MaxIDLen)},
		},
		Before: needRoot,
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("up takes no arguments (did you mean --name %s?)", c.Args().First())
			}
			name := c.String("name")
			if name == "" && !c.IsSet("name") {
				name = experiments.NewLabID()
			}
			if err := topology.ValidateID(name); err != nil {
				return usageError(err)
			}
			l, err := topology.New(name)
			if err != nil {
				return usageError(err)
			}
			stop := onInterrupt()
			defer stop()
			if err := l.Up(topology.KindUp); err != nil {
				if errors.Is(err, topology.ErrExists) {
					st, serr := topology.Inspect(name)
					if serr != nil {
						return usageError(serr)
					}
					return usageError(st.Taken())
				}
				return usageError(fmt.Errorf("build lab %s: %w", name, err))
			}
			_ = printLab(c.App.Writer, name)
			return nil
		},
	}
}
