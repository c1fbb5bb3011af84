package experiments

import (
	"fmt"
	"testing"

	"github.com/tcplab/tcplab/internal/labtest"
)

// TestMatrix runs every cell of the ICMP matrix, both families, and asserts
// each against its declared expectation: the errno from the kernel's
// table, when it comes, the packets, and that the connection survives.
func TestMatrix(t *testing.T) {
	labtest.Privileged(t)
	jobs := MatrixJobs([]int{4, 6})
	if len(jobs) != 3*len(Codes) {
		t.Fatalf("%d jobs for %d codes", len(jobs), len(Codes))
	}
	results := RunJobs(jobs, Config{}, 12, nil)
	for i, j := range jobs {
		c := CellOf(j, results[i])
		name := fmt.Sprintf("v%d/%s/%s", c.Family, c.Name, c.Phase)
		if c.Verdict != Match {
			t.Errorf("%s: %s %s", name, c.Verdict, c.Detail)
			continue
		}
		switch c.Phase {
		case PhaseSurvive:
			if c.Survives == nil || !*c.Survives {
				t.Errorf("%s: the connection did not survive", name)
			}
		default:
			if c.Errno == "" || c.AfterMS <= 0 || c.Segments < 2 {
				t.Errorf("%s: incomplete cell %+v", name, c)
			}
		}
		labtest.NoLeftovers(t, results[i].Lab)
	}
}
