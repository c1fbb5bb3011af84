package report

import (
	"bytes"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/experiments"
)

// junitSchema is the Ant JUnit schema the CI systems' readers accept.
const junitSchema = "testdata/junit.xsd"

// xmllintJUnit validates a file against junitSchema with xmllint
// (libxml2-utils, installed by scripts/test-deps.sh).
func xmllintJUnit(t *testing.T, path string) {
	t.Helper()
	if _, err := exec.LookPath("xmllint"); err != nil {
		t.Fatalf("xmllint is needed (scripts/test-deps.sh installs libxml2-utils): %v", err)
	}
	out, err := exec.Command("xmllint", "--noout", "--schema", junitSchema, path).CombinedOutput()
	if err != nil {
		t.Fatalf("xmllint --schema %s %s: %v\n%s", junitSchema, path, err, out)
	}
}

// junitDoc is the recorded runs of every case in both families, and runs
// with the user's programs that passed, failed, were only observed or could
// not run.
func junitDoc(t *testing.T) Document {
	d := loadBoth(t)
	exit := 28
	prog := &experiments.Program{Cmd: "curl -sS http://$TCPLAB_SERVER_ADDR/", Exit: &exit}
	d.Results = append(d.Results,
		experiments.Result{Case: "host-crash", Family: 4, Verdict: experiments.Pass, WallMS: 2500, ClientProgram: prog,
			Expectations: []experiments.ExpectationResult{{Program: "client", Kind: "exit", Want: "28", OK: true, Sentence: "the client should exit with status 28, and it exited with status 28."}}},
		experiments.Result{Case: "host-crash", Family: 4, Verdict: experiments.Fail, WallMS: 5100, ClientProgram: prog,
			Expectations: []experiments.ExpectationResult{
				{Program: "client", Kind: "exit", Want: "28", OK: true, Sentence: "the client should exit with status 28, and it exited with status 28."},
				{Program: "client", Kind: "within", Want: "1s", OK: false, Sentence: "the client should have ended within 1s of the fault, but it exited with status 28 only 2.01 s after the fault."},
				{Program: "client", Kind: "stderr", Want: "<&>", OK: false, Sentence: "the client's stderr should match /<&>/, but its stderr (9 bytes, ending \"\\x01 \\\"q\\\"\") does not."},
			}},
		experiments.Result{Case: "host-reboot", Family: 6, Verdict: experiments.Observed, WallMS: 1000, ClientProgram: prog},
		experiments.Result{Case: "connect-timeout", Family: 4, Verdict: experiments.Mismatch, WallMS: 3300, Mismatches: []string{"client: connect → ETIMEDOUT returned 9.00 s after the fault, expected after 3.00 s..3.50 s"}},
		experiments.Result{Case: "host-reboot", Family: 6, Verdict: experiments.Error, Error: "the client command exited (exit status 7) before its connection was established; stderr: \x1b[1mcurl\x1b[0m"},
	)
	return d
}

func TestJUnitValidates(t *testing.T) {
	d := junitDoc(t)
	var b bytes.Buffer
	if err := JUnit(&b, d, JUnitOptions{Suite: "tcplab run", Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Hostname: "ci"}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "junit.xml")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	xmllintJUnit(t, path)
	n, err := CheckJUnit(b.Bytes())
	if err != nil {
		t.Fatalf("CheckJUnit: %v\n%s", err, b.String())
	}
	if n != len(d.Results) {
		t.Errorf("%d testcases for %d case runs", n, len(d.Results))
	}

	var got junitSuites
	if err := xml.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	s := got.Suites[0]
	if s.Timestamp != "2026-01-02T03:04:05" || s.Hostname != "ci" || s.Name != "tcplab run" {
		t.Errorf("suite: %+v", s)
	}
	names := map[string]bool{}
	failed := 0
	for i, c := range s.Cases {
		r := d.Results[i]
		if names[c.Name] {
			t.Errorf("two testcases named %q", c.Name)
		}
		names[c.Name] = true
		if c.Classname != "tcplab."+r.Case {
			t.Errorf("testcase %q: classname %q", c.Name, c.Classname)
		}
		bad := r.Verdict == experiments.Mismatch || r.Verdict == experiments.Error || r.Verdict == experiments.Fail
		if bad != (c.Failure != nil) {
			t.Errorf("testcase %q, verdict %s: failure %+v", c.Name, r.Verdict, c.Failure)
		}
		if c.Failure != nil {
			failed++
			if c.Failure.Type != r.Verdict {
				t.Errorf("testcase %q: failure type %q, want the verdict %q", c.Name, c.Failure.Type, r.Verdict)
			}
			for _, sentence := range JUnitSentences(r) {
				if !strings.Contains(c.Failure.Text, xmlSafe(sentence)) {
					t.Errorf("testcase %q: failure lacks %q:\n%s", c.Name, sentence, c.Failure.Text)
				}
			}
		}
	}
	if failed != s.Failures || failed < 3 {
		t.Errorf("%d failures, suite says %d", failed, s.Failures)
	}
	for _, want := range []string{"host-crash IPv4 run 1", "host-crash IPv4 run 2", "host-crash IPv4 run 3", "host-crash IPv6 run 1", "host-reboot IPv6 run 2", "host-reboot IPv6 run 3"} {
		if !names[want] {
			t.Errorf("no testcase %q among %v", want, names)
		}
	}
	for _, p := range []string{`name="kernel"`, `name="verdict host-crash IPv4 run 3" value="fail"`} {
		if !strings.Contains(b.String(), p) {
			t.Errorf("no property %s", p)
		}
	}
	if strings.Contains(b.String(), "\x1b") || strings.Contains(b.String(), "\x01") {
		t.Error("control characters in the XML")
	}
}

// TestCheckJUnitRefuses: the Go check finds what the schema forbids.
func TestCheckJUnitRefuses(t *testing.T) {
	var b bytes.Buffer
	if err := JUnit(&b, junitDoc(t), JUnitOptions{}); err != nil {
		t.Fatal(err)
	}
	good := b.String()
	if _, err := CheckJUnit([]byte(good)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ old, new, want string }{
		{"<testsuites>", `<testsuites name="x">`, "allows none"},
		{` package="tcplab"`, "", "lacks package"},
		{`tests="`, `tests="1`, "tests="},
		{` classname="tcplab.connect-timeout"`, "", "classname"},
		{`<system-err></system-err>`, "", "children"},
		{`type="fail"`, "", "type"},
	} {
		bad := strings.Replace(good, c.old, c.new, 1)
		if bad == good {
			t.Fatalf("%q not in the XML", c.old)
		}
		if _, err := CheckJUnit([]byte(bad)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("with %q for %q: %v, want an error about %s", c.new, c.old, err, c.want)
		}
	}
}
