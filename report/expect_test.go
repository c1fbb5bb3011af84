package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/experiments"
)

// expectResult is a run with the user's programs whose expectations
// failed in part.
func expectResult() experiments.Result {
	exit := 56
	after := 3350.0
	return experiments.Result{
		Case: "host-crash", Family: 4, Title: "Server host crashes", Verdict: experiments.Fail,
		ClientProgram: &experiments.Program{Cmd: "curl -sS http://$TCPLAB_SERVER_ADDR/", Exit: &exit, AfterFaultMS: &after},
		ServerProgram: &experiments.Program{Cmd: "./server", Signal: "SIGKILL", Stopped: "when the run ended"},
		Expectations: []experiments.ExpectationResult{
			{Program: "client", Kind: "exit", Want: "28", Got: "exited with status 56", OK: false, Sentence: "the client should exit with status 28, but it exited with status 56."},
			{Program: "client", Kind: "within", Want: "5s", Got: "3.35 s after the fault", OK: true, Sentence: "the client should have ended within 5s of the fault, and it exited with status 56, 3.35 s after the fault."},
		},
	}
}

// TestExpectationsRendered: each expectation is one sentence in the text
// report, the HTML report and the JSON, with the verdict.
func TestExpectationsRendered(t *testing.T) {
	r := expectResult()
	var txt bytes.Buffer
	Text(&txt, r)
	flat := strings.Join(strings.Fields(txt.String()), " ")
	for _, want := range []string{
		"NO the client should exit with status 28, but it exited with status 56.",
		"ok the client should have ended within 5s of the fault, and it exited with status 56, 3.35 s after the fault.",
		"verdict FAIL: 1 of the 2 expectations about your programs did not hold",
		"stopped: still running when the run ended",
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("text report lacks %q:\n%s", want, txt.String())
		}
	}
	var m bytes.Buffer
	Matrix(&m, []experiments.Result{r})
	if !strings.Contains(m.String(), " fail") {
		t.Errorf("closing table:\n%s", m.String())
	}

	var h bytes.Buffer
	if err := HTML(&h, Document{Results: []experiments.Result{r}}); err != nil {
		t.Fatal(err)
	}
	page := h.String()
	for _, want := range []string{
		`FAIL: your programs did not do what you expected of them`,
		`<li data-ok="false"><span class="no">✗</span> the client should exit with status 28, but it exited with status 56.</li>`,
		`<li data-ok="true"><span class="ok">✓</span> the client should have ended within 5s`,
		`class="badge fail"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("HTML report lacks %q", want)
		}
	}

	var j bytes.Buffer
	if err := JSON(&j, Document{Results: []experiments.Result{r}}); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Results []struct {
			Verdict      string                          `json:"verdict"`
			Expectations []experiments.ExpectationResult `json:"expectations"`
		} `json:"results"`
	}
	if err := json.Unmarshal(j.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if got := back.Results[0]; got.Verdict != "fail" || len(got.Expectations) != 2 || got.Expectations[0].OK || got.Expectations[0].Sentence != r.Expectations[0].Sentence {
		t.Errorf("JSON: %+v", got)
	}

	r.Verdict = experiments.Pass
	r.Expectations = r.Expectations[1:]
	txt.Reset()
	Text(&txt, r)
	if !strings.Contains(txt.String(), "verdict   PASS: your programs did all you expected of them") {
		t.Errorf("text report of a pass:\n%s", txt.String())
	}
}
