package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/tcplab/tcplab/topology"
	"github.com/urfave/cli/v2"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "list the labs that exist, with their nodes and addresses",
		Description: "A lab whose state file is corrupt, or whose namespaces are gone, is listed with a line\n" +
			"on stderr saying what is wrong and what removes it, and the exit status is 2.",
		Before: needRoot,
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usagef("status takes no arguments")
			}
			ids, err := topology.Labs()
			if err != nil {
				return usageError(err)
			}
			if len(ids) == 0 {
				fmt.Fprintln(c.App.Writer, "no labs")
				return nil
			}
			var problems []error
			for _, id := range ids {
				if err := printLab(c.App.Writer, id); err != nil {
					problems = append(problems, err)
				}
			}
			if len(problems) == 0 {
				return nil
			}
			for _, p := range problems[:len(problems)-1] {
				fmt.Fprintln(os.Stderr, "tcplab: "+oneLine(p.Error()))
			}
			return usageError(problems[len(problems)-1])
		},
	}
}

// printLab describes one lab: its kind, owner, nodes and addresses. It
// returns what is wrong with the lab's record, if anything: a corrupt state
// file, or a state file whose namespaces are all gone.
func printLab(w io.Writer, id string) error {
	s, err := topology.ReadState(id)
	exists := topology.Exists(id)
	var problem error
	switch {
	case errors.Is(err, topology.ErrNoLab) && !exists:
		return nil // removed while the labs were listed
	case errors.Is(err, topology.ErrNoLab):
		fmt.Fprintf(w, "lab %s (no state file: left by a killed tcplab; `tcplab clean` removes it)\n", id)
	case err != nil:
		fmt.Fprintf(w, "lab %s (state file unreadable)\n", id)
		problem = fmt.Errorf("%w; `tcplab down %s` removes the lab", err, id)
	case !s.Ready && s.OwnerAlive():
		fmt.Fprintf(w, "lab %s (being built by tcplab, pid %d)\n", id, s.PID)
	case s.Kind == topology.KindRun && s.OwnerAlive():
		fmt.Fprintf(w, "lab %s (made by tcplab run, pid %d, running)\n", id, s.PID)
	case !exists:
		fmt.Fprintf(w, "lab %s (namespaces gone)\n", id)
		problem = fmt.Errorf("lab %q no longer exists (its namespaces are gone); `tcplab down %s` or `tcplab clean` removes its stale state file", id, id)
	case s.Kind == topology.KindUp && s.Ready:
		fmt.Fprintf(w, "lab %s (up since %s)\n", id, s.Created.Local().Format("2006-01-02 15:04:05"))
	default:
		fmt.Fprintf(w, "lab %s (made by tcplab %s, pid %d, gone; `tcplab clean` removes it)\n", id, s.Kind, s.PID)
	}
	rows := []struct{ role, addrs string }{
		{topology.Client, topology.ClientIP.String() + "/24, " + topology.ClientIP6.String() + "/64"},
		{topology.Router, topology.RouterClientIP.String() + "/24, " + topology.RouterServerIP.String() + "/24, " +
			topology.RouterClientIP6.String() + "/64, " + topology.RouterServerIP6.String() + "/64"},
		{topology.Server, topology.ServerIP.String() + "/24, " + topology.ServerIP6.String() + "/64"},
	}
	for _, r := range rows {
		state := ""
		if !topology.NodeExists(id, r.role) {
			state = "  (missing)"
		}
		fmt.Fprintf(w, "  %-7s netns %s%s\n  %-7s %s\n", r.role, topology.NSName(id, r.role), state, "", r.addrs)
	}
	return problem
}
