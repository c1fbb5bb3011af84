package report

import (
	"fmt"
	"io"

	"github.com/tcplab/tcplab/experiments"
)

// expectationsText lists the user's expectations about their programs,
// each marked ok or NO with its sentence.
func expectationsText(w io.Writer, r experiments.Result) {
	if len(r.Expectations) == 0 {
		return
	}
	fmt.Fprintf(w, "expected  what you asserted about your programs\n")
	for _, e := range r.Expectations {
		mark := "ok "
		if !e.OK {
			mark = "NO "
		}
		for i, l := range wrap(mark+" "+e.Sentence, 72) {
			if i == 0 {
				fmt.Fprintf(w, "  %s\n", l)
			} else {
				fmt.Fprintf(w, "      %s\n", l)
			}
		}
	}
}

// verdictText is the verdict line of a run with expectations.
func verdictText(w io.Writer, r experiments.Result) {
	switch r.Verdict {
	case experiments.Pass:
		fmt.Fprintf(w, "verdict   PASS: your programs did all you expected of them under the fault\n")
	case experiments.Fail:
		n := len(r.FailedExpectations())
		fmt.Fprintf(w, "verdict   FAIL: %d of the %d expectations about your programs did not hold\n          (marked NO above)\n", n, len(r.Expectations))
	}
}
