package main

import (
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
		Description: "A lab whose state file is corrupt, or whose namespaces are gone or incomplete, is listed with a line\n" +
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
// returns what is wrong with the lab, if anything (LabStatus.Problem).
func printLab(w io.Writer, id string) error {
	st, err := topology.Inspect(id)
	if err != nil {
		return err
	}
	if !st.Exists() {
		return nil // removed while the labs were listed
	}
	fmt.Fprintf(w, "lab %s (%s)\n", id, st.Summary())
	rows := []struct{ role, addrs string }{
		{topology.Client, topology.ClientIP.String() + "/24, " + topology.ClientIP6.String() + "/64"},
		{topology.Router, topology.RouterClientIP.String() + "/24, " + topology.RouterServerIP.String() + "/24, " +
			topology.RouterClientIP6.String() + "/64, " + topology.RouterServerIP6.String() + "/64"},
		{topology.Server, topology.ServerIP.String() + "/24, " + topology.ServerIP6.String() + "/64"},
	}
	for _, r := range rows {
		state := ""
		switch st.Node(r.role) {
		case topology.NodeMissing:
			state = "  (missing)"
		case topology.NodeStub:
			state = "  (not a namespace)"
		}
		fmt.Fprintf(w, "  %-7s netns %s%s\n  %-7s %s\n", r.role, topology.NSName(id, r.role), state, "", r.addrs)
	}
	return st.Problem()
}
