package main

import (
	"os"
	"time"

	"github.com/tcplab/tcplab/report"
	"github.com/urfave/cli/v2"
)

// junitFlag is --junit, on run and matrix.
func junitFlag() cli.Flag {
	return &cli.StringFlag{Name: "junit", Usage: "also write the results as JUnit XML to `FILE`, one test per case run, for CI"}
}

// junitFile reads --junit and checks, before any lab is built, that the
// file can be written.
func junitFile(c *cli.Context) (string, error) {
	if !c.IsSet("junit") {
		return "", nil
	}
	path := c.String("junit")
	if path == "" {
		return "", usagef("--junit needs a file name")
	}
	if err := report.JUnitPath(path); err != nil {
		return "", usageError(err)
	}
	return path, nil
}

func junitOptions(suite string, started time.Time) report.JUnitOptions {
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	return report.JUnitOptions{Suite: suite, Started: started, Hostname: host}
}
