package main

import (
	"fmt"
	"os"
	"os/exec"

	"github.com/tcplab/tcplab/topology"
	"github.com/urfave/cli/v2"
)

func execCommand() *cli.Command {
	return &cli.Command{
		Name:      "exec",
		Usage:     "run a command inside a node of a running lab",
		ArgsUsage: "NAME NODE -- CMD [ARGS...]",
		Description: "NODE is client, router or server. The command replaces tcplab, so its standard\n" +
			"input, output and exit status are the command's own.",
		SkipFlagParsing: false,
		Before:          needRoot,
		Action: func(c *cli.Context) error {
			args := c.Args().Slice()
			if len(args) > 0 && args[0] == "--" {
				args = args[1:]
			}
			if len(args) < 3 {
				return usagef("usage: tcplab exec NAME NODE -- CMD [ARGS...]")
			}
			id, role, argv := args[0], args[1], args[2:]
			if argv[0] == "--" {
				argv = argv[1:]
			}
			if len(argv) == 0 {
				return usagef("usage: tcplab exec NAME NODE -- CMD [ARGS...]")
			}
			if err := topology.ValidateID(id); err != nil {
				return usageError(err)
			}
			if role != topology.Client && role != topology.Router && role != topology.Server {
				return usagef("unknown node %q: use client, router or server", role)
			}
			l, _, err := topology.Open(id)
			if err != nil {
				return usageError(err)
			}
			path, err := exec.LookPath(argv[0])
			if err != nil {
				return usagef("%v", err)
			}
			err = l.Node(role).Exec(path, argv, os.Environ())
			return usageError(fmt.Errorf("exec %s: %w", path, err))
		},
	}
}
