package experiments

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Verdicts of a run with the user's own programs and expectations about
// them: every expectation held, or at least one did not.
const (
	Pass = "pass"
	Fail = "fail"
)

// Expect is what the user asserts about their own programs. With none set,
// a run with them is only observed; with any, it passes or fails.
type Expect struct {
	// ClientExit is how the client must end.
	ClientExit *ExitSpec
	// ClientWithin, when positive, is how soon after the fault the client
	// must have ended. A client still running then has failed it, and is
	// stopped at once instead of at --client-timeout.
	ClientWithin time.Duration
	// ClientStdout and ClientStderr must match what the client wrote
	// (the last OutputKept bytes of each stream).
	ClientStdout, ClientStderr *Pattern
	// ServerExit, ServerStdout and ServerStderr are the same for the
	// server.
	ServerExit                 *ExitSpec
	ServerStdout, ServerStderr *Pattern
}

// OutputKept is how much of each of a program's output streams is kept for
// the expectations: the last 64 KiB.
const OutputKept = 64 << 10

// Any tells whether anything is expected.
func (e Expect) Any() bool {
	return e.ClientExit != nil || e.ClientWithin > 0 || e.ClientStdout != nil || e.ClientStderr != nil ||
		e.ServerExit != nil || e.ServerStdout != nil || e.ServerStderr != nil
}

// CheckPrograms refuses an expectation about a program that is not run.
func (e Expect) CheckPrograms(b BYO) error {
	if b.ClientCmd == "" && (e.ClientExit != nil || e.ClientWithin > 0 || e.ClientStdout != nil || e.ClientStderr != nil) {
		return errors.New("expectations about the client need your client: give --client-cmd")
	}
	if b.ServerCmd == "" && (e.ServerExit != nil || e.ServerStdout != nil || e.ServerStderr != nil) {
		return errors.New("expectations about the server need your server: give --server-cmd")
	}
	if e.ClientWithin < 0 {
		return errors.New("the time the client must end within must not be negative")
	}
	return nil
}

// ExitSpec is how a program must end.
type ExitSpec struct {
	// Kind is "code", "zero", "nonzero", "signal" or "running".
	Kind string
	// Code is the exit status, for Kind "code".
	Code int
	// Signal is the signal's name (SIGKILL), for Kind "signal".
	Signal string
}

// ParseExit reads an exit expectation: a status from 0 to 255, zero,
// nonzero, signal:NAME (KILL, SIGKILL or a number), or running (the program
// was still running when tcplab stopped it: at --client-timeout, or for a
// server at the end of the run).
func ParseExit(s string) (ExitSpec, error) {
	s = strings.TrimSpace(s)
	switch low := strings.ToLower(s); {
	case low == "zero":
		return ExitSpec{Kind: "zero"}, nil
	case low == "nonzero":
		return ExitSpec{Kind: "nonzero"}, nil
	case low == "running":
		return ExitSpec{Kind: "running"}, nil
	case strings.HasPrefix(low, "signal:"):
		name := strings.ToUpper(strings.TrimSpace(s[len("signal:"):]))
		if n, err := strconv.Atoi(name); err == nil {
			if n < 1 || n > 64 {
				return ExitSpec{}, fmt.Errorf("exit %q: no signal %d", s, n)
			}
			return ExitSpec{Kind: "signal", Signal: SignalName(syscall.Signal(n))}, nil
		}
		if !strings.HasPrefix(name, "SIG") {
			name = "SIG" + name
		}
		if unix.SignalNum(name) == 0 {
			return ExitSpec{}, fmt.Errorf("exit %q: unknown signal %s (e.g. signal:KILL, signal:TERM, signal:PIPE)", s, strings.TrimPrefix(name, "SIG"))
		}
		return ExitSpec{Kind: "signal", Signal: name}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 255 {
		return ExitSpec{}, fmt.Errorf("exit %q: give a status from 0 to 255, zero, nonzero, signal:NAME or running", s)
	}
	return ExitSpec{Kind: "code", Code: n}, nil
}

func (x ExitSpec) String() string {
	switch x.Kind {
	case "code":
		return strconv.Itoa(x.Code)
	case "signal":
		return "signal:" + strings.TrimPrefix(x.Signal, "SIG")
	}
	return x.Kind
}

// wants says in words what the spec asks of a program.
func (x ExitSpec) wants() string {
	switch x.Kind {
	case "code":
		return fmt.Sprintf("exit with status %d", x.Code)
	case "zero":
		return "exit with status 0"
	case "nonzero":
		return "exit with a nonzero status"
	case "signal":
		return "be killed by " + x.Signal
	}
	return "still be running when tcplab stopped it"
}

// Pattern is a regular expression a program's output must match, with the
// text it was given as.
type Pattern struct {
	Source string
	re     *regexp.Regexp
}

// ParsePattern compiles a regular expression (Go's RE2 syntax).
func ParsePattern(s string) (*Pattern, error) {
	if s == "" {
		return nil, errors.New("an empty regular expression matches anything: give one")
	}
	re, err := regexp.Compile(s)
	if err != nil {
		return nil, fmt.Errorf("regular expression %q: %w", s, err)
	}
	return &Pattern{Source: s, re: re}, nil
}

// ExpectationResult is one expectation about the user's programs and
// whether it held: plain data for the reports.
type ExpectationResult struct {
	// Program is client or server; Kind is exit, within, stdout or stderr.
	Program string `json:"program"`
	Kind    string `json:"kind"`
	// Want is the expectation as given; Got is what the program did.
	Want string `json:"want"`
	Got  string `json:"got"`
	OK   bool   `json:"ok"`
	// Sentence says both in one sentence.
	Sentence string `json:"sentence"`
}

// FailedExpectations are the sentences of the expectations that did not
// hold.
func (r Result) FailedExpectations() []string {
	var out []string
	for _, e := range r.Expectations {
		if !e.OK {
			out = append(out, e.Sentence)
		}
	}
	return out
}

// judgeExpect checks the expectations against what the programs did and sets
// the verdict: pass or fail. A run that could not be carried out keeps its
// error.
func judgeExpect(res *Result, e Expect, client, server *program) {
	if !e.Any() || res.Verdict != Observed {
		return
	}
	type prog struct {
		role           string
		p              *program
		rep            *Program
		exit           *ExitSpec
		stdout, stderr *Pattern
	}
	for _, pr := range []prog{
		{"client", client, res.ClientProgram, e.ClientExit, e.ClientStdout, e.ClientStderr},
		{"server", server, res.ServerProgram, e.ServerExit, e.ServerStdout, e.ServerStderr},
	} {
		if pr.p == nil || pr.rep == nil {
			continue
		}
		if pr.exit != nil {
			res.Expectations = append(res.Expectations, exitResult(pr.role, *pr.exit, pr.rep))
		}
		if pr.role == "client" && e.ClientWithin > 0 {
			res.Expectations = append(res.Expectations, withinResult(e.ClientWithin, pr.rep, res.faultAt.IsZero()))
		}
		for _, o := range []struct {
			stream string
			pat    *Pattern
			out    *keep
		}{{"stdout", pr.stdout, pr.p.stdout}, {"stderr", pr.stderr, pr.p.stderrAll}} {
			if o.pat != nil {
				res.Expectations = append(res.Expectations, outputResult(pr.role, o.stream, o.pat, o.out))
			}
		}
	}
	res.Verdict = Pass
	if len(res.FailedExpectations()) > 0 {
		res.Verdict = Fail
	}
}

// ended says how a program ended, in words, and whether tcplab stopped it.
func ended(p *Program) (how string, stopped bool) {
	switch {
	case p.Stopped != "":
		return "was still running " + p.Stopped + " and was stopped", true
	case p.Signal != "":
		return "was killed by " + p.Signal, false
	case p.Exit != nil:
		return fmt.Sprintf("exited with status %d", *p.Exit), false
	}
	return "was still running", true
}

func exitResult(role string, x ExitSpec, p *Program) ExpectationResult {
	how, stopped := ended(p)
	var ok bool
	switch x.Kind {
	case "code":
		ok = !stopped && p.Exit != nil && *p.Exit == x.Code
	case "zero":
		ok = !stopped && p.Exit != nil && *p.Exit == 0
	case "nonzero":
		ok = !stopped && p.Exit != nil && *p.Exit != 0
	case "signal":
		ok = !stopped && p.Signal == x.Signal
	case "running":
		ok = stopped
	}
	got := how
	s := fmt.Sprintf("the %s should %s, and it %s", role, x.wants(), how)
	if !ok {
		s = fmt.Sprintf("the %s should %s, but it %s", role, x.wants(), how)
	}
	return ExpectationResult{Program: role, Kind: "exit", Want: x.String(), Got: got, OK: ok, Sentence: s + "."}
}

func withinResult(d time.Duration, p *Program, noFault bool) ExpectationResult {
	since := "the fault"
	if noFault {
		since = "it started" // no fault was marked: count from the start
	}
	r := ExpectationResult{Program: "client", Kind: "within", Want: d.String()}
	how, stopped := ended(p)
	after := p.RanMS
	if !noFault && p.AfterFaultMS != nil {
		after = *p.AfterFaultMS
	}
	took := fmtDur(time.Duration(after * float64(time.Millisecond)))
	r.Got = fmt.Sprintf("%s after %s", took, since)
	switch {
	case stopped:
		r.Got = "still running " + took + " after " + since
		r.Sentence = fmt.Sprintf("the client should have ended within %v of %s, but it %s.", d, since, how)
	case time.Duration(after*float64(time.Millisecond)) <= d:
		r.OK = true
		r.Sentence = fmt.Sprintf("the client should have ended within %v of %s, and it %s, %s after %s.", d, since, how, took, since)
	default:
		r.Sentence = fmt.Sprintf("the client should have ended within %v of %s, but it %s only %s after %s.", d, since, how, took, since)
	}
	return r
}

func outputResult(role, stream string, pat *Pattern, out *keep) ExpectationResult {
	text, cut := out.text()
	r := ExpectationResult{Program: role, Kind: stream, Want: pat.Source}
	r.OK = pat.re.MatchString(text)
	what := fmt.Sprintf("its %s", stream)
	if cut > 0 {
		what = fmt.Sprintf("the last %d KiB of its %s", OutputKept>>10, stream)
	}
	switch {
	case len(text) == 0:
		r.Got = "nothing written"
	case r.OK:
		r.Got = "matched: " + quoteShort(pat.re.FindString(text))
	default:
		r.Got = fmt.Sprintf("no match in %d bytes", len(text))
	}
	switch {
	case r.OK:
		r.Sentence = fmt.Sprintf("the %s's %s should match /%s/, and it did (%s).", role, stream, pat.Source, quoteShort(pat.re.FindString(text)))
	case len(text) == 0:
		r.Sentence = fmt.Sprintf("the %s's %s should match /%s/, but the %s wrote nothing to it.", role, stream, pat.Source, role)
	default:
		r.Sentence = fmt.Sprintf("the %s's %s should match /%s/, but %s (%d bytes, ending %s) does not.", role, stream, pat.Source, what, len(text), quoteShort(lastLine(text)))
	}
	return r
}

// quoteShort quotes s, cut to 60 characters.
func quoteShort(s string) string {
	if r := []rune(s); len(r) > 60 {
		s = string(r[:57]) + "..."
	}
	return strconv.Quote(s)
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// keep holds the last max bytes written to it, and counts what it dropped.
type keep struct {
	mu   sync.Mutex
	max  int
	buf  []byte
	lost int64
}

func newKeep(max int) *keep { return &keep{max: max} }

func (k *keep) Write(b []byte) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(b) >= k.max {
		k.lost += int64(len(k.buf) + len(b) - k.max)
		k.buf = append(k.buf[:0], b[len(b)-k.max:]...)
		return len(b), nil
	}
	if over := len(k.buf) + len(b) - k.max; over > 0 {
		k.lost += int64(over)
		n := copy(k.buf, k.buf[over:])
		k.buf = k.buf[:n]
	}
	k.buf = append(k.buf, b...)
	return len(b), nil
}

// text is what is kept, and how many bytes before it were dropped.
func (k *keep) text() (string, int64) {
	if k == nil {
		return "", 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return string(k.buf), k.lost
}
