package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/experiments"
)

// TestCountersRendered: a result's kernel counters appear in the text and
// HTML reports, with their change and what was expected.
func TestCountersRendered(t *testing.T) {
	r := experiments.Result{Case: "close-unread", Verdict: experiments.Mismatch, Counters: []experiments.CounterChange{
		{Node: "server", Name: "TcpExt:TCPAbortOnClose", During: "the close", Before: 3, After: 5, Want: "1", OK: false},
	}}
	var text bytes.Buffer
	Text(&text, r)
	if !strings.Contains(text.String(), "NO server TcpExt:TCPAbortOnClose +2 (3 → 5) during the close, want 1") {
		t.Errorf("text report without the counter:\n%s", text.String())
	}
	var html bytes.Buffer
	if err := HTML(&html, Document{Results: []experiments.Result{r}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(html.String(), "<td>TcpExt:TCPAbortOnClose</td><td class=\"t\">3 → 5</td>") {
		t.Errorf("HTML report without the counter")
	}
}
