package report

import (
	"encoding/json"
	"os"
	"slices"
	"testing"

	"github.com/tcplab/tcplab/experiments"
)

// The recorded runs of every case, over IPv4 (`tcplab run all --json`) and
// IPv6 (`--family 6`), so the renderers are tested on what the lab
// produces, without a lab.
const (
	recorded  = "testdata/run-all.json"
	recorded6 = "testdata/run-all-6.json"
)

// loadRun reads the recorded IPv4 run.
func loadRun(t testing.TB) Document { return loadFile(t, recorded) }

// loadBoth reads both recorded runs into one document, IPv4 first.
func loadBoth(t testing.TB) Document {
	d := loadFile(t, recorded)
	d.Results = append(d.Results, loadFile(t, recorded6).Results...)
	return d
}

// loadFile reads a recorded run.
func loadFile(t testing.TB, recorded string) Document {
	t.Helper()
	b, err := os.ReadFile(recorded)
	if err != nil {
		t.Fatal(err)
	}
	var d Document
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", recorded, err)
	}
	if len(d.Results) == 0 {
		t.Fatalf("%s holds no results", recorded)
	}
	return d
}

// caseResult returns the recorded result of one case.
func caseResult(t testing.TB, d Document, id string) experiments.Result {
	t.Helper()
	for _, r := range d.Results {
		if r.Case == id {
			return r
		}
	}
	t.Fatalf("the recorded run has no %s", id)
	return experiments.Result{}
}

// wantArrows counts the packets a diagram must draw, from the timeline
// itself: every packet the router received from the client or the server
// on their side, and every packet the router sent itself; forwarded copies
// and the client's own capture are the same packets.
func wantArrows(r experiments.Result) (arrows, notForwarded int) {
	for _, e := range r.Timeline {
		p := e.Packet
		if e.Kind != "packet" || p == nil || p.Proto == "arp" {
			continue
		}
		own := map[string][]string{
			experiments.PointRouterClient: {"198.51.100.2", "198.51.100.1", "2001:db8:c::2", "2001:db8:c::1"},
			experiments.PointRouterServer: {"203.0.113.2", "203.0.113.1", "2001:db8:5::2", "2001:db8:5::1"},
		}[p.Point]
		if !slices.Contains(own, p.Src) {
			continue
		}
		arrows++
		if p.Fate == "not forwarded" {
			notForwarded++
		}
	}
	return arrows, notForwarded
}
