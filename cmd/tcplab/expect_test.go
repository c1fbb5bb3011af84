package main

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/experiments"
	"github.com/tcplab/tcplab/internal/labtest"
	"github.com/tcplab/tcplab/report"
	"github.com/tcplab/tcplab/topology"
)

// Expectations on real third-party programs, tested as whole processes:
// each kind passes where it should and fails where it should.

type expectDoc struct {
	Results []struct {
		Case          string `json:"case"`
		Family        int    `json:"family"`
		Verdict       string `json:"verdict"`
		Error         string `json:"error"`
		ClientProgram *struct {
			Exit       *int   `json:"exit"`
			Signal     string `json:"signal"`
			Stopped    string `json:"stopped"`
			StdoutTail []string
		} `json:"client_program"`
		Expectations []experiments.ExpectationResult `json:"expectations"`
	} `json:"results"`
}

// expectRun runs one case with --json and the arguments, and checks the
// exit status against the verdict: 0 for pass, 1 for fail.
func expectRun(t *testing.T, verdict string, args ...string) expectDoc {
	t.Helper()
	began := time.Now()
	o := tcplab(t, "", append([]string{"run", "--json"}, args...)...)
	var d expectDoc
	if err := json.Unmarshal([]byte(o.stdout), &d); err != nil || len(d.Results) != 1 {
		t.Fatalf("tcplab run %q: status %d, JSON: %v\n%s\n%s", args, o.code, err, o.stderr, o.stdout)
	}
	r := d.Results[0]
	want := map[string]int{experiments.Pass: 0, experiments.Fail: 1}[verdict]
	if r.Verdict != verdict || o.code != want {
		t.Fatalf("tcplab run %q: verdict %s (error %q), status %d; want %s and %d\nexpectations: %+v", args, r.Verdict, r.Error, o.code, verdict, want, r.Expectations)
	}
	t.Logf("tcplab run %s: %s in %v", args[0], r.Verdict, time.Since(began).Round(time.Millisecond))
	return d
}

// wantExpectations checks which expectations held, by kind and program
// ("client exit"), in order.
func wantExpectations(t *testing.T, got []experiments.ExpectationResult, want map[string]bool) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d expectations, want %d: %+v", len(got), len(want), got)
	}
	for _, e := range got {
		key := e.Program + " " + e.Kind
		ok, known := want[key]
		if !known {
			t.Errorf("unexpected expectation %s: %+v", key, e)
			continue
		}
		if e.OK != ok {
			t.Errorf("%s: ok=%v, want %v: %s", key, e.OK, ok, e.Sentence)
		}
		if e.Sentence == "" || strings.Count(e.Sentence, ". ") > 0 || !strings.HasSuffix(e.Sentence, ".") {
			t.Errorf("%s: not one sentence: %q", key, e.Sentence)
		}
	}
}

// streamServer is python3 serving one HTTP response forever, slowly, so a
// transfer is under way when the fault comes; it says on standard output
// that it listens, and on standard error the address it bound, before it
// listens (tcplab starts the client once the port listens; the fault may
// come before the server program has run past accept).
const streamServer = `exec python3 -u -c '
import os, socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((os.environ["TCPLAB_SERVER_ADDR"], int(os.environ["TCPLAB_SERVER_PORT"])))
print("bound", s.getsockname()[0], file=sys.stderr)
s.listen()
print("listening on", s.getsockname()[1])
c, peer = s.accept()
c.recv(4096)
c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n")
while True:
    c.sendall(b"x" * 1000)
    time.sleep(0.05)
'`

const curlGet = `curl -sS -o /dev/null http://$TCPLAB_SERVER_ADDR:$TCPLAB_SERVER_PORT/`

// TestExpectWithinCurl: under host-crash, curl without --max-time waits on
// a silent connection: --expect-within 5s fails (and the run ends when the
// 5 s are up, not at --client-timeout); with --max-time 2 it gives up in
// time with status 28 and the expectations pass. With the kernel's own
// timers: the shortened tcp_retries2 would end a connection whose request
// the crash caught unacknowledged in about 3 s, whatever curl does.
func TestExpectWithinCurl(t *testing.T) {
	labtest.Privileged(t)
	needTools(t, "curl", "python3")
	t.Run("no-max-time", func(t *testing.T) {
		t.Parallel()
		began := time.Now()
		r := expectRun(t, experiments.Fail, "host-crash", "--kernel-defaults", "--server-cmd", streamServer, "--client-cmd", curlGet, "--expect-within", "5s").Results[0]
		wantExpectations(t, r.Expectations, map[string]bool{"client within": false})
		if !strings.Contains(r.Expectations[0].Sentence, "within 5s of the fault") || !strings.Contains(r.ClientProgram.Stopped, "--expect-within") {
			t.Errorf("sentence %q, stopped %q", r.Expectations[0].Sentence, r.ClientProgram.Stopped)
		}
		if d := time.Since(began); d > 60*time.Second {
			t.Errorf("the run took %v: the client should be stopped once --expect-within has passed", d)
		}
	})
	t.Run("max-time-2", func(t *testing.T) {
		t.Parallel()
		r := expectRun(t, experiments.Pass, "host-crash", "--kernel-defaults", "--server-cmd", streamServer, "--client-cmd", strings.Replace(curlGet, "curl ", "curl --max-time 2 ", 1),
			"--expect-within", "5s", "--expect-exit", "28", "--expect-stderr", `\(28\) .*timed out`).Results[0]
		wantExpectations(t, r.Expectations, map[string]bool{"client exit": true, "client within": true, "client stderr": true})
	})
}

// TestExpectExitCurl: curl against a port nothing listens on exits 7.
func TestExpectExitCurl(t *testing.T) {
	labtest.Privileged(t)
	needTools(t, "curl")
	t.Run("pass", func(t *testing.T) {
		t.Parallel()
		r := expectRun(t, experiments.Pass, "connect-refused", "--client-cmd", curlGet, "--expect-exit", "7", "--expect-stderr", "Failed to connect", "--expect-within", "2s").Results[0]
		wantExpectations(t, r.Expectations, map[string]bool{"client exit": true, "client within": true, "client stderr": true})
	})
	t.Run("fail", func(t *testing.T) {
		t.Parallel()
		o := tcplab(t, "", "run", "connect-refused", "--client-cmd", curlGet, "--expect-exit", "zero", "--expect-stdout", "200", "--expect-stderr", "reset by peer")
		if o.code != 1 {
			t.Fatalf("status %d, want 1\n%s\n%s", o.code, o.stderr, o.stdout)
		}
		for _, want := range []string{
			"the client should exit with status 0, but it exited with status 7.",
			"the client's stdout should match /200/, but the client wrote nothing to it.",
			`the client's stderr should match /reset by peer/, but its stderr`,
			"verdict FAIL: 3 of the 3 expectations",
		} {
			if !strings.Contains(strings.Join(strings.Fields(o.stdout), " "), want) {
				t.Errorf("the text report lacks %q:\n%s", want, o.stdout)
			}
		}
		if !strings.Contains(o.stdout, "connect-refused") || !strings.Contains(o.stdout, "fail") {
			t.Errorf("the closing table lacks the verdict:\n%s", o.stdout)
		}
	})
	t.Run("nonzero", func(t *testing.T) {
		t.Parallel()
		expectRun(t, experiments.Pass, "connect-refused", "--client-cmd", curlGet, "--expect-exit", "nonzero")
	})
}

// pyClient is python3 reading an HTTP response with TCP keepalive every
// second; it prints on standard output what ended the read, and exits 3.
// Given the argument write, it restores SIGPIPE's default action, sends no
// request (so the server, blocked reading it, leaves nothing unread that
// would turn its close into a RST) and, once the server's close arrives
// (EOF), writes twice, as a client that does not look at what it reads
// would: the first write draws a RST, the second SIGPIPE.
const pyClient = `exec python3 -u -c '
import errno, os, signal, socket, sys, time
write = len(sys.argv) > 1
if write:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
s = socket.create_connection((os.environ["TCPLAB_SERVER_ADDR"], int(os.environ["TCPLAB_SERVER_PORT"])))
s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
if not write:
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
try:
    while s.recv(65536):
        pass
    print("EOF")
    if write:
        s.send(b"x" * 100)
        time.sleep(0.2)
        s.send(b"x" * 100)
    sys.exit(3)
except OSError as e:
    print("error", errno.errorcode.get(e.errno, e.errno))
    print("python client:", e, file=sys.stderr)
    sys.exit(3)
'`

// TestExpectPython: python3 as client and server under a reboot (the
// client's keepalive probe draws a RST; the server dies with its host) and
// under a killed server (a client writing with SIGPIPE's default action
// is killed by it).
func TestExpectPython(t *testing.T) {
	labtest.Privileged(t)
	needTools(t, "python3")
	reboot := []string{"host-reboot", "--server-cmd", streamServer, "--client-cmd", pyClient}
	t.Run("reboot-pass", func(t *testing.T) {
		t.Parallel()
		r := expectRun(t, experiments.Pass, append(reboot,
			"--expect-exit", "3", "--expect-stdout", `(?m)^error ECONNRESET$`, "--expect-stderr", "Connection reset by peer",
			"--expect-server-exit", "signal:KILL", "--expect-server-stdout", "listening on 8000", "--expect-server-stderr", "(?m)^bound "+regexp.QuoteMeta(topology.Addr(topology.Server, 4).String())+"$",
			"--expect-within", "10s")...).Results[0]
		wantExpectations(t, r.Expectations, map[string]bool{
			"client exit": true, "client within": true, "client stdout": true, "client stderr": true,
			"server exit": true, "server stdout": true, "server stderr": true,
		})
	})
	t.Run("reboot-fail", func(t *testing.T) {
		t.Parallel()
		r := expectRun(t, experiments.Fail, append(reboot,
			"--expect-exit", "signal:TERM", "--expect-stdout", "ETIMEDOUT", "--expect-stderr", "reset by peer",
			"--expect-server-exit", "running", "--expect-server-stdout", "Traceback", "--expect-server-stderr", "Traceback")...).Results[0]
		wantExpectations(t, r.Expectations, map[string]bool{
			"client exit": false, "client stdout": false, "client stderr": true,
			"server exit": false, "server stdout": false, "server stderr": false,
		})
	})
	t.Run("sigpipe", func(t *testing.T) {
		t.Parallel()
		r := expectRun(t, experiments.Pass, "sigpipe", "--server-cmd", streamServer, "--client-cmd", pyClient+" write",
			"--expect-exit", "signal:PIPE", "--expect-within", "5s").Results[0]
		if r.ClientProgram.Signal != "SIGPIPE" {
			t.Errorf("client: %+v", r.ClientProgram)
		}
	})
	t.Run("sigpipe-fail", func(t *testing.T) {
		t.Parallel()
		r := expectRun(t, experiments.Fail, "server-killed", "--server-cmd", streamServer, "--client-cmd", pyClient+" write",
			"--expect-exit", "zero").Results[0]
		if !strings.Contains(r.Expectations[0].Sentence, "but it was killed by SIGPIPE") {
			t.Errorf("sentence: %q", r.Expectations[0].Sentence)
		}
	})
}

// TestExpectBadInput: expectations that cannot be judged are refused
// before any lab is built: exit status 2, one line.
func TestExpectBadInput(t *testing.T) {
	labtest.Privileged(t)
	before := labsNow(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--client-cmd", "true", "--expect-within", "5x"}, `--expect-within "5x": not a duration`},
		{[]string{"--client-cmd", "true", "--expect-within", "-1s"}, "--expect-within -1s: give a duration"},
		{[]string{"--client-cmd", "true", "--expect-stdout", "(unclosed"}, "--expect-stdout: regular expression"},
		{[]string{"--client-cmd", "true", "--expect-stderr", ""}, "--expect-stderr: an empty regular expression"},
		{[]string{"--client-cmd", "true", "--expect-exit", "signal:BOGUS"}, "unknown signal BOGUS"},
		{[]string{"--client-cmd", "true", "--expect-exit", "256"}, "give a status from 0 to 255"},
		{[]string{"--client-cmd", "true", "--expect-exit", "maybe"}, "give a status from 0 to 255"},
		{[]string{"--expect-exit", "0"}, "--expect-exit is about your client program: give --client-cmd too"},
		{[]string{"--server-cmd", "true", "--expect-within", "1s"}, "give --client-cmd too"},
		{[]string{"--client-cmd", "true", "--expect-server-exit", "0"}, "--expect-server-exit is about your server program: give --server-cmd too"},
		{[]string{"--client-cmd", "true", "--expect-server-stdout", "x"}, "give --server-cmd too"},
		{[]string{"--junit", ""}, "--junit needs a file name"},
		{[]string{"--junit", "/nonexistent/dir/junit.xml"}, "junit file /nonexistent/dir/junit.xml cannot be written"},
	} {
		args := append([]string{"run", "host-crash"}, c.args...)
		o := tcplab(t, "", args...)
		if o.code != 2 || !strings.Contains(o.stderr, c.want) || strings.Count(strings.TrimSpace(o.stderr), "\n") != 0 || o.stdout != "" {
			t.Errorf("tcplab %q: status %d, stderr %q, stdout %q; want 2 and %q", args, o.code, o.stderr, o.stdout, c.want)
		}
	}
	if o := tcplab(t, "", "matrix", "--junit", t.TempDir()); o.code != 2 || !strings.Contains(o.stderr, "is a directory") {
		t.Errorf("matrix --junit DIR: status %d, stderr %q", o.code, o.stderr)
	}
	// No lab was built: none is left that was not there before (other
	// processes' leftovers may go meanwhile).
	for _, id := range strings.Split(labsNow(t), ",") {
		if id != "" && !slices.Contains(strings.Split(before, ","), id) {
			t.Errorf("lab %s left behind", id)
		}
	}
}

// xmllintJUnit validates a JUnit file against the Ant JUnit schema
// (report/testdata/junit.xsd) with xmllint, which scripts/test-deps.sh
// installs (libxml2-utils).
func xmllintJUnit(t *testing.T, path string) {
	t.Helper()
	needTools(t, "xmllint")
	out, err := exec.Command("xmllint", "--noout", "--schema", "../../report/testdata/junit.xsd", path).CombinedOutput()
	if err != nil {
		t.Fatalf("xmllint --schema junit.xsd %s: %v\n%s", path, err, out)
	}
}

type junitXML struct {
	Suites []struct {
		Name     string `xml:"name,attr"`
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Props    []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"properties>property"`
		Cases []struct {
			Name      string `xml:"name,attr"`
			Classname string `xml:"classname,attr"`
			Time      string `xml:"time,attr"`
			Failure   *struct {
				Type string `xml:"type,attr"`
				Text string `xml:",chardata"`
			} `xml:"failure"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// TestJUnitRunAll: `tcplab run all --junit F` writes a file the schema
// accepts, with one testcase per case run, each named by case, family and
// repetition, failed exactly where the verdict (from --json) is not match.
func TestJUnitRunAll(t *testing.T) {
	labtest.Privileged(t)
	path := filepath.Join(t.TempDir(), "junit.xml")
	o := tcplab(t, "", "run", "all", "--json", "--parallel", "4", "--junit", path)
	if o.code != 0 && o.code != 1 {
		t.Fatalf("run all: status %d\n%s", o.code, o.stderr)
	}
	var doc report.Document
	if err := json.Unmarshal([]byte(o.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	checkJUnitFile(t, path, doc, "tcplab run")
}

// TestJUnitMatrix: the matrix's cells as JUnit, over IPv6 (fewer cells).
func TestJUnitMatrix(t *testing.T) {
	labtest.Privileged(t)
	path := filepath.Join(t.TempDir(), "junit.xml")
	o := tcplab(t, "", "matrix", "--family", "6", "--parallel", "4", "--junit", path)
	if o.code != 0 && o.code != 1 {
		t.Fatalf("matrix: status %d\n%s", o.code, o.stderr)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	xmllintJUnit(t, path)
	n, err := report.CheckJUnit(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(experiments.MatrixJobs([]int{6})); n != want {
		t.Errorf("%d testcases, want one per cell: %d", n, want)
	}
	if !strings.Contains(string(b), `classname="tcplab.matrix-syn-v6-`) || !strings.Contains(string(b), ` IPv6 run 1"`) {
		t.Errorf("testcase names:\n%s", b)
	}
	if (o.code == 1) != strings.Contains(string(b), "<failure") {
		t.Errorf("status %d, but the file's failures disagree:\n%s", o.code, b)
	}
}

func checkJUnitFile(t *testing.T, path string, doc report.Document, suite string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	xmllintJUnit(t, path)
	n, err := report.CheckJUnit(b)
	if err != nil {
		t.Fatalf("CheckJUnit: %v\n%s", err, b)
	}
	if n != len(doc.Results) || n != len(experiments.All()) {
		t.Errorf("%d testcases for %d case runs of %d cases", n, len(doc.Results), len(experiments.All()))
	}
	var f junitXML
	if err := xml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	s := f.Suites[0]
	if s.Name != suite {
		t.Errorf("suite %q, want %q", s.Name, suite)
	}
	props := map[string]string{}
	for _, p := range s.Props {
		props[p.Name] = p.Value
	}
	if props["kernel"] != doc.Kernel || props["kernel"] == "" {
		t.Errorf("kernel property %q, want %q", props["kernel"], doc.Kernel)
	}
	for i, c := range s.Cases {
		r := doc.Results[i]
		if want := r.Case + " IPv4 run 1"; c.Name != want || c.Classname != "tcplab."+r.Case {
			t.Errorf("testcase %d: %q (%s), want %q (tcplab.%s)", i, c.Name, c.Classname, want, r.Case)
		}
		if props["verdict "+c.Name] != r.Verdict {
			t.Errorf("testcase %q: verdict property %q, want %q", c.Name, props["verdict "+c.Name], r.Verdict)
		}
		if (r.Verdict != experiments.Match) != (c.Failure != nil) {
			t.Errorf("testcase %q: verdict %s, failure %+v", c.Name, r.Verdict, c.Failure)
		}
		if c.Time == "" || c.Time == "0.000" {
			t.Errorf("testcase %q: time %q", c.Name, c.Time)
		}
	}
}

// TestCIDocFlags: every flag docs/ci.md gives tcplab exists: the flags of
// its `tcplab run` commands (continued over lines ending in \) and of its
// table.
func TestCIDocFlags(t *testing.T) {
	b, err := os.ReadFile("../../docs/ci.md")
	if err != nil {
		t.Fatal(err)
	}
	run := newApp().Command("run")
	flags := map[string]bool{}
	for _, f := range run.Flags {
		for _, n := range f.Names() {
			flags[n] = true
		}
	}
	flagWord := regexp.MustCompile("(?:^|[\\s`|])--([a-z0-9][a-z0-9-]*)")
	quoted := regexp.MustCompile(`'[^']*'`)
	inRun, seen := false, 0
	for i, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "tcplab run ") || strings.HasPrefix(line, "| `--") {
			inRun = true
		}
		if inRun {
			// Not the flags of the programs in quotes, nor the
			// placeholder --expect-...
			bare := strings.ReplaceAll(quoted.ReplaceAllString(line, "''"), "--expect-...", "")
			for _, m := range flagWord.FindAllStringSubmatch(bare, -1) {
				seen++
				if !flags[m[1]] {
					t.Errorf("docs/ci.md:%d: tcplab run has no flag --%s", i+1, m[1])
				}
			}
		}
		inRun = inRun && strings.HasSuffix(strings.TrimSpace(line), "\\")
	}
	if seen < 20 {
		t.Errorf("only %d flags found in docs/ci.md's tcplab run commands", seen)
	}
}
