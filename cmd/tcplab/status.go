package main

import (
	"fmt"
	"io"

	"github.com/tcplab/tcplab/topology"
	"github.com/urfave/cli/v2"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:   "status",
		Usage:  "list the labs that exist, with their nodes and addresses",
		Before: needRoot,
		Action: func(c *cli.Context) error {
			ids, err := topology.Labs()
			if err != nil {
				return usageError(err)
			}
			if len(ids) == 0 {
				fmt.Fprintln(c.App.Writer, "no labs")
				return nil
			}
			for _, id := range ids {
				printLab(c.App.Writer, id)
			}
			return nil
		},
	}
}

// printLab describes one lab: its kind, owner, nodes and addresses.
func printLab(w io.Writer, id string) {
	s, err := topology.ReadState(id)
	switch {
	case err != nil:
		fmt.Fprintf(w, "lab %s: %v (remove it with `tcplab clean`)\n", id, err)
	case s.Kind == topology.KindUp:
		fmt.Fprintf(w, "lab %s (up since %s)\n", id, s.Created.Local().Format("2006-01-02 15:04:05"))
	default:
		alive := "gone"
		if s.OwnerAlive() {
			alive = "running"
		}
		fmt.Fprintf(w, "lab %s (made by tcplab run, pid %d, %s)\n", id, s.PID, alive)
	}
	rows := []struct{ role, addrs string }{
		{topology.Client, topology.ClientIP.String() + "/24"},
		{topology.Router, topology.RouterClientIP.String() + "/24, " + topology.RouterServerIP.String() + "/24"},
		{topology.Server, topology.ServerIP.String() + "/24"},
	}
	for _, r := range rows {
		state := ""
		if !topology.NodeExists(id, r.role) {
			state = "  (missing)"
		}
		fmt.Fprintf(w, "  %-7s netns %-24s %s%s\n", r.role, topology.NSName(id, r.role), r.addrs, state)
	}
}
