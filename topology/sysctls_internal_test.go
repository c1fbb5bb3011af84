package topology

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestBaselineSysctls: bench/baseline-iproute2.sh, the iproute2 lab that
// bench/compare.sh times tcplab against, writes the same settings as a lab
// node, in the same order, so that the two do the same work.
func TestBaselineSysctls(t *testing.T) {
	b, err := os.ReadFile("../bench/baseline-iproute2.sh")
	if err != nil {
		t.Fatal(err)
	}
	body := string(b)
	start, end := strings.Index(body, "node_sysctls() {"), strings.Index(body, "\techo \"$cmds\"")
	if start < 0 || end < start {
		t.Fatal("no node_sysctls function in the baseline script")
	}
	line := regexp.MustCompile(`(?m)^\t+w (\S+) (\S+)$`)
	for _, role := range []string{Client, Router} {
		fwd := "0"
		if role == Router {
			fwd = "1"
		}
		var got []kv
		routerOnly := false
		for _, l := range strings.Split(body[start:end], "\n") {
			if strings.Contains(l, `if [ "$1" = 1 ]`) {
				routerOnly = true
			}
			m := line.FindStringSubmatch(l)
			if m == nil || (routerOnly && role != Router) {
				continue
			}
			got = append(got, kv{"net." + strings.ReplaceAll(m[1], "/", "."), strings.ReplaceAll(m[2], `"$1"`, fwd)})
		}
		want := nodeSysctls(role)
		if len(got) != len(want) {
			t.Errorf("%s: the baseline writes %d settings, a lab node %d:\n%v\n%v", role, len(got), len(want), got, want)
			continue
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: setting %d: the baseline writes %s=%s, a lab node %s=%s", role, i, got[i].k, got[i].v, want[i].k, want[i].v)
			}
		}
	}
}
