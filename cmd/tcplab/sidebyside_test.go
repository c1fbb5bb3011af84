package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/experiments"
	"github.com/tcplab/tcplab/internal/labtest"
)

type runDoc struct {
	Results []struct {
		Case       string   `json:"case"`
		Lab        string   `json:"lab"`
		Verdict    string   `json:"verdict"`
		Error      string   `json:"error"`
		Mismatches []string `json:"mismatches"`
	} `json:"results"`
}

// TestSideBySide: two tcplab processes at once, one running every case in
// turn and the other all of them at once (--parallel 10), twenty labs in
// all. They never interfere: every case gives match in both, each on a lab
// of its own, and nothing of any lab remains. The host's links, addresses,
// routes, nftables ruleset and sysctls are the same before and after.
func TestSideBySide(t *testing.T) {
	labtest.Privileged(t)
	before := labtest.HostSnapshot(t)
	procs := map[string]*proc{
		"serial":      startTcplab(t, "run", "all", "--json"),
		"parallel 10": startTcplab(t, "run", "all", "--json", "--parallel", "10"),
	}
	labs := map[string]string{}
	for name, p := range procs {
		code := p.wait(3 * time.Minute)
		t.Logf("run all (%s): exit %d after %.1f s", name, code, p.ended.Sub(p.began).Seconds())
		var doc runDoc
		if err := json.Unmarshal([]byte(p.stdout.String()), &doc); err != nil {
			t.Fatalf("%s: JSON: %v\nstderr:\n%s", name, err, p.stderr.String())
		}
		if code != 0 {
			t.Errorf("%s: exit status %d; stderr:\n%s", name, code, p.stderr.String())
		}
		seen := map[string]bool{}
		for _, r := range doc.Results {
			seen[r.Case] = true
			if r.Verdict != experiments.Match {
				t.Errorf("%s: %s: verdict %s: %s %s", name, r.Case, r.Verdict, r.Error, strings.Join(r.Mismatches, "; "))
			}
			if other, dup := labs[r.Lab]; dup {
				t.Errorf("lab %s served two cases: %s and %s", r.Lab, other, r.Case)
			}
			labs[r.Lab] = r.Case
			labtest.NoLeftovers(t, r.Lab)
		}
		for _, id := range experiments.IDs() {
			if !seen[id] {
				t.Errorf("%s: no result for %s", name, id)
			}
		}
	}
	if after := labtest.HostSnapshot(t); after != before {
		t.Errorf("the host's network state changed:\n%s", labtest.SnapshotDiff(before, after))
	}
}
