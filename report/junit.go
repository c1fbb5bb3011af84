package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/tcplab/tcplab/experiments"
)

// JUnit XML, in the strict form of Apache Ant's JUnit task, which the CI
// systems' readers (Jenkins, GitLab, GitHub Actions reporters, Azure
// Pipelines) all accept: <testsuites> holds one <testsuite> with the
// required attributes (name, timestamp without zone, hostname, tests,
// failures, errors, time, package, id), its <properties> first, one
// <testcase> per case run, then <system-out> and <system-err>. A testcase
// holds at most one <failure>. testdata/junit.xsd is that schema.

// JUnitOptions describe the run the file reports.
type JUnitOptions struct {
	// Suite names the test suite: "tcplab run", "tcplab matrix".
	Suite string
	// Started is when the run began; Hostname is the machine's name.
	Started  time.Time
	Hostname string
}

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Package    string          `xml:"package,attr"`
	ID         int             `xml:"id,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Hostname   string          `xml:"hostname,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Time       string          `xml:"time,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
	SystemOut  string          `xml:"system-out"`
	SystemErr  string          `xml:"system-err"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// JUnitName is a case run's test name: the case, its family and which
// repetition it is ("host-crash IPv4 run 1").
func JUnitName(r experiments.Result, rep int) string {
	fam := r.Family
	if fam == 0 {
		fam = 4
	}
	return fmt.Sprintf("%s IPv%d run %d", r.Case, fam, rep)
}

// JUnitSentences are what a case run's <failure> says: for a mismatch the
// mismatches, for an error the error, for a fail the failed expectations.
// A run that passed, matched or was only observed has none.
func JUnitSentences(r experiments.Result) []string {
	switch r.Verdict {
	case experiments.Match, experiments.Pass, experiments.Observed:
		return nil
	case experiments.Error:
		return []string{"the case could not run: " + r.Error}
	case experiments.Fail:
		return r.FailedExpectations()
	}
	if len(r.Mismatches) == 0 {
		return []string{"verdict " + r.Verdict}
	}
	return r.Mismatches
}

// JUnit writes the run as JUnit XML: one testcase per case run, named by
// JUnitName, with classname tcplab.CASE and the run's wall time; a
// <failure> (type: the verdict) for each run that did not match or pass.
// The kernel, tool version and each run's verdict are the suite's
// properties; <system-out> repeats the verdicts, one line per run.
func JUnit(w io.Writer, d Document, o JUnitOptions) error {
	if o.Suite == "" {
		o.Suite = "tcplab"
	}
	if o.Started.IsZero() {
		o.Started = time.Now()
	}
	if o.Hostname == "" {
		o.Hostname = "localhost"
	}
	s := junitSuite{
		Name:      o.Suite,
		Package:   "tcplab",
		Timestamp: o.Started.UTC().Format("2006-01-02T15:04:05"),
		Hostname:  o.Hostname,
		Properties: []junitProperty{
			{"kernel", nonEmpty(d.Kernel)},
			{"tool", nonEmpty(d.Tool)},
			{"version", nonEmpty(d.Version)},
		},
	}
	var out strings.Builder
	fmt.Fprintf(&out, "kernel %s\n", nonEmpty(d.Kernel))
	reps := map[string]int{}
	total := 0.0
	for _, r := range d.Results {
		key := fmt.Sprintf("%s/%d", r.Case, r.Family)
		reps[key]++
		name := JUnitName(r, reps[key])
		secs := r.WallMS / 1000
		total += secs
		tc := junitCase{Name: name, Classname: "tcplab." + r.Case, Time: fmt.Sprintf("%.3f", secs)}
		if sentences := JUnitSentences(r); len(sentences) > 0 {
			msg := sentences[0]
			if len(sentences) > 1 {
				msg = fmt.Sprintf("%s (and %d more)", msg, len(sentences)-1)
			}
			tc.Failure = &junitFailure{Message: xmlSafe(msg), Type: r.Verdict, Text: xmlSafe("- " + strings.Join(sentences, "\n- ") + "\n")}
			s.Failures++
		}
		s.Cases = append(s.Cases, tc)
		s.Properties = append(s.Properties, junitProperty{"verdict " + name, r.Verdict})
		fmt.Fprintf(&out, "%s: %s\n", name, r.Verdict)
	}
	s.Tests = len(s.Cases)
	s.Time = fmt.Sprintf("%.3f", total)
	s.SystemOut = xmlSafe(out.String())
	b, err := xml.MarshalIndent(junitSuites{Suites: []junitSuite{s}}, "", "  ")
	if err != nil {
		return fmt.Errorf("junit report: %w", err)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return err
	}
	_, err = io.WriteString(w, "\n")
	return err
}

func nonEmpty(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// xmlSafe drops what XML 1.0 cannot carry at all (control characters a
// program may have written); encoding/xml escapes the rest.
func xmlSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t', r == '\n', r == '\r':
			return r
		case r < 0x20, r == 0xfffe, r == 0xffff, r >= 0xd800 && r < 0xe000:
			return -1
		}
		return r
	}, s)
}

// JUnitPath checks, before any case runs, that the JUnit file can be
// written to path; it leaves an existing file as it was.
func JUnitPath(path string) error {
	st, statErr := os.Stat(path)
	if statErr == nil && st.IsDir() {
		return fmt.Errorf("junit file %s is a directory", path)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("junit file %s cannot be written: %w", path, err)
	}
	f.Close()
	if os.IsNotExist(statErr) {
		return os.Remove(path)
	}
	return nil
}

// WriteJUnit renders the run as JUnit XML and writes it to path.
func WriteJUnit(path string, d Document, o JUnitOptions) error {
	var b bytes.Buffer
	if err := JUnit(&b, d, o); err != nil {
		return err
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("junit file: %w", err)
	}
	return nil
}
