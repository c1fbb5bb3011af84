package experiments

import (
	"strings"
	"testing"
	"time"
)

func TestParseExit(t *testing.T) {
	for in, want := range map[string]string{
		"0": "0", "28": "28", "255": "255", "zero": "zero", "NonZero": "nonzero", "running": "running",
		"signal:KILL": "signal:KILL", "signal:sigpipe": "signal:PIPE", "signal:15": "signal:TERM",
	} {
		x, err := ParseExit(in)
		if err != nil || x.String() != want {
			t.Errorf("ParseExit(%q) = %v, %v; want %s", in, x, err, want)
		}
	}
	for _, in := range []string{"", "-1", "256", "maybe", "signal:", "signal:BOGUS", "signal:0", "signal:99", "1.5"} {
		if _, err := ParseExit(in); err == nil {
			t.Errorf("ParseExit(%q) accepted", in)
		}
	}
}

func TestKeepBounded(t *testing.T) {
	k := newKeep(10)
	k.Write([]byte("0123456"))
	k.Write([]byte("789ab"))
	if s, lost := k.text(); s != "23456789ab" || lost != 2 {
		t.Errorf("%q, %d lost", s, lost)
	}
	k.Write([]byte(strings.Repeat("x", 25) + "END"))
	if s, lost := k.text(); s != "xxxxxxxEND" || lost != 2+28-0 {
		t.Errorf("%q, %d lost", s, lost)
	}
}

// TestJudgeExpect: each kind against a program's outcome, and the
// verdict.
func TestJudgeExpect(t *testing.T) {
	exit := func(s string) *ExitSpec { x, _ := ParseExit(s); return &x }
	pat := func(s string) *Pattern { p, _ := ParsePattern(s); return p }
	code := func(n int) *int { return &n }
	after := func(ms float64) *float64 { return &ms }
	fault := time.Now()
	for _, c := range []struct {
		name    string
		e       Expect
		p       Program
		out     string
		ok      bool
		phrases []string
	}{
		{"status", Expect{ClientExit: exit("28")}, Program{Exit: code(28)}, "", true, []string{"should exit with status 28, and it exited with status 28."}},
		{"status wrong", Expect{ClientExit: exit("28")}, Program{Exit: code(7)}, "", false, []string{"but it exited with status 7"}},
		{"nonzero", Expect{ClientExit: exit("nonzero")}, Program{Exit: code(7)}, "", true, nil},
		{"zero stopped", Expect{ClientExit: exit("zero")}, Program{Signal: "SIGKILL", Stopped: "3m0s after it started (--client-timeout)"}, "", false, []string{"was still running 3m0s after it started (--client-timeout) and was stopped"}},
		{"signal", Expect{ClientExit: exit("signal:PIPE")}, Program{Signal: "SIGPIPE"}, "", true, []string{"be killed by SIGPIPE"}},
		{"signal not by tcplab", Expect{ClientExit: exit("signal:KILL")}, Program{Signal: "SIGKILL", Stopped: "when the run ended"}, "", false, nil},
		{"running", Expect{ClientExit: exit("running")}, Program{Signal: "SIGKILL", Stopped: "when the run ended"}, "", true, nil},
		{"within", Expect{ClientWithin: 5 * time.Second}, Program{Exit: code(28), AfterFaultMS: after(2010)}, "", true, []string{"within 5s of the fault, and it exited with status 28, 2.01 s after the fault."}},
		{"within late", Expect{ClientWithin: time.Second}, Program{Exit: code(28), AfterFaultMS: after(2010)}, "", false, []string{"only 2.01 s after the fault"}},
		{"within stopped", Expect{ClientWithin: time.Second}, Program{Signal: "SIGKILL", Stopped: "1s after the fault (--expect-within)", AfterFaultMS: after(1001)}, "", false, []string{"was still running 1s after the fault (--expect-within) and was stopped."}},
		{"stdout", Expect{ClientStdout: pat("^200$")}, Program{Exit: code(0)}, "200", true, []string{`and it did ("200")`}},
		{"stdout no", Expect{ClientStdout: pat("^200$")}, Program{Exit: code(0)}, "000\n", false, []string{`(4 bytes, ending "000") does not`}},
		{"stdout empty", Expect{ClientStdout: pat("x")}, Program{Exit: code(0)}, "", false, []string{"the client wrote nothing to it"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := &program{stdout: newKeep(OutputKept), stderrAll: newKeep(OutputKept)}
			p.stdout.Write([]byte(c.out))
			rep := c.p
			res := Result{Verdict: Observed, ClientProgram: &rep, faultAt: fault}
			judgeExpect(&res, c.e, p, nil)
			if len(res.Expectations) != 1 {
				t.Fatalf("%d expectations", len(res.Expectations))
			}
			e := res.Expectations[0]
			want := map[bool]string{true: Pass, false: Fail}[c.ok]
			if e.OK != c.ok || res.Verdict != want {
				t.Errorf("ok %v, verdict %s; want %v: %s", e.OK, res.Verdict, c.ok, e.Sentence)
			}
			for _, ph := range c.phrases {
				if !strings.Contains(e.Sentence, ph) {
					t.Errorf("sentence %q lacks %q", e.Sentence, ph)
				}
			}
		})
	}
	// No expectation, or a run that could not be carried out: unchanged.
	for _, v := range []string{Observed, Error} {
		res := Result{Verdict: v, ClientProgram: &Program{}}
		judgeExpect(&res, Expect{}, &program{}, nil)
		judgeExpect(&Result{Verdict: Error}, Expect{ClientExit: exit("0")}, &program{}, nil)
		if res.Verdict != v {
			t.Errorf("verdict %s became %s", v, res.Verdict)
		}
	}
}
