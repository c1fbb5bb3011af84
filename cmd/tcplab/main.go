// Command tcplab reproduces the classic ways a TCP connection fails, on
// real sockets in a client/router/server network-namespace lab.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/tcplab/tcplab/experiments"
	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// Exit statuses.
const (
	exitOK       = 0
	exitMismatch = 1 // a verdict was not `match`
	exitUsage    = 2 // bad input or an unusable environment
)

func main() {
	if experiments.IsAgent() {
		os.Exit(experiments.AgentMain())
	}
	os.Exit(run(os.Args))
}

func newApp() *cli.App {
	return &cli.App{
		Name:    "tcplab",
		Usage:   "reproduce the classic TCP connection failures in a network-namespace lab",
		Version: version,
		Description: "tcplab builds a client, a router and a server network namespace joined by veth pairs,\n" +
			"opens a real connection between real sockets, injects a fault (nftables on the router,\n" +
			"link and namespace operations and signals on the server), and reports what the textbook\n" +
			"says, what this kernel did, and whether that is what Linux is expected to do.\n" +
			"Everything but `list` needs root. The host's own network namespace is never changed.",
		HideHelpCommand:      true,
		EnableBashCompletion: false,
		Commands: []*cli.Command{
			listCommand(),
			explainCommand(),
			runCommand(),
			upCommand(),
			statusCommand(),
			execCommand(),
			faultCommand(),
			matrixCommand(),
			downCommand(),
			cleanCommand(),
			completionCommand(), completeCommand(),
		},
		OnUsageError:   func(c *cli.Context, err error, _ bool) error { return usageError(err) },
		ExitErrHandler: func(*cli.Context, error) {},
	}
}

// run executes the CLI and maps errors to exit statuses.
func run(args []string) int {
	app := newApp()
	if len(args) > 1 && !strings.HasPrefix(args[1], "-") && app.Command(args[1]) == nil {
		fmt.Fprintf(os.Stderr, "tcplab: unknown command %q; see tcplab --help\n", args[1])
		return exitUsage
	}
	if len(args) > 1 {
		if cmd := app.Command(args[1]); cmd != nil {
			args = append(args[:2:2], flagsFirst(cmd, args[2:])...)
		}
	}
	err := app.Run(args)
	if err == nil {
		return exitOK
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(os.Stderr, "tcplab: "+msg)
		}
		return ec.ExitCode()
	}
	fmt.Fprintln(os.Stderr, "tcplab: "+err.Error())
	return exitUsage
}

// usageError and usagef make the one-line errors of exit status 2.
func usageError(err error) error { return cli.Exit(oneLine(err.Error()), exitUsage) }

func usagef(format string, a ...any) error {
	return cli.Exit(oneLine(fmt.Sprintf(format, a...)), exitUsage)
}

// oneLine joins the lines of a message (errors.Join puts each error on its
// own): an error is one line on stderr.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

// needRoot is the Before of every verb that touches namespaces.
func needRoot(*cli.Context) error {
	if os.Geteuid() != 0 {
		return usagef("this command needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN to create network namespaces); run it with sudo")
	}
	return nil
}

// flagsFirst moves a verb's flags before its arguments, so that
// `tcplab run all --parallel 4` means what it says: the CLI library stops
// reading flags at the first argument. Everything after "--" stays as is.
func flagsFirst(cmd *cli.Command, args []string) []string {
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			rest = append(rest, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if takesValue[name] && !strings.Contains(name, "=") && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return append(flags, rest...)
}
