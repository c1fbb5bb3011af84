package experiments

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/capture"

	"github.com/tcplab/tcplab/internal/labtest"
)

// TestCases runs every case on a real lab, side by side, and checks the
// verdict and the observed calls, in order, per node.
func TestCases(t *testing.T) {
	labtest.Privileged(t)
	for _, family := range []int{4, 6} {
		for _, c := range All() {
			t.Run(fmt.Sprintf("ipv%d/%s", family, c.ID), func(t *testing.T) {
				t.Parallel()
				runAndCheck(t, c, family)
			})
		}
	}
}

func runAndCheck(t *testing.T, c *Case, family int) {
	r := RunCase(c, Config{Family: family})
	if r.Family != family {
		t.Errorf("result family %d, want %d", r.Family, family)
	}
	t.Cleanup(func() { labtest.NoLeftovers(t, r.Lab) })
	if r.Verdict != Match {
		t.Errorf("verdict %s: %s %v", r.Verdict, r.Error, r.Mismatches)
	}
	// The verdict compares the calls with the declaration; check here too
	// that every declared call was observed, node by node and in order.
	for _, node := range []string{"client", "server"} {
		var got, exp []string
		for _, e := range r.Events {
			if e.Node == node {
				got = append(got, strings.TrimSpace(fmt.Sprintf("%s %s %s", e.Syscall, e.Result, e.Signal)))
			}
		}
		for _, w := range r.Expected.Calls {
			if w.Node == node {
				exp = append(exp, strings.TrimSpace(fmt.Sprintf("%s %s %s", w.Syscall, w.Result, w.Signal)))
			}
		}
		if strings.Join(got, "\n") != strings.Join(exp, "\n") {
			t.Errorf("%s calls:\n got  %q\n want %q", node, got, exp)
		}
	}
	if r.ElapsedMS <= 0 {
		t.Errorf("elapsed %v ms", r.ElapsedMS)
	}
	checkPcaps(t, c, r)
}

// TestLookup: an unknown case names the valid ones and the nearest.
func TestLookup(t *testing.T) {
	if _, err := Lookup("host-crash"); err != nil {
		t.Fatal(err)
	}
	_, err := Lookup("host-crsh")
	if err == nil || !strings.Contains(err.Error(), `did you mean "host-crash"`) || !strings.Contains(err.Error(), "connect-refused") {
		t.Fatalf("Lookup(host-crsh) = %v", err)
	}
}

// TestDeclarations: every case declares what a report needs.
func TestDeclarations(t *testing.T) {
	for _, c := range All() {
		if c.No <= 0 || c.Title == "" || c.Summary == "" || c.Trigger == "" || c.Textbook == "" || len(c.TextbookAccount().Calls) == 0 ||
			c.Steps == nil || c.Settings == nil || c.Packets == nil || c.Course == nil || c.Linux == nil {
			t.Errorf("%s: incomplete declaration", c.ID)
		}
		for _, cfg := range []Config{{}, {KernelDefaults: true}, {Family: 6}} {
			cfg = cfg.Complete()
			tm := c.SettingsFor(cfg).Predict(Measured{})
			e := c.LinuxAccount(tm)
			if e.Summary == "" || len(e.Calls) == 0 {
				t.Errorf("%s: no Linux expectation", c.ID)
			}
			if len(c.Packets(tm)) == 0 {
				t.Errorf("%s: no packet checks", c.ID)
			}
		}
		if !c.TextbookMatchesLinux() && c.Why == "" {
			t.Errorf("%s: Linux differs from the textbook but the case does not say why", c.ID)
		}
	}
}

// checkPcaps writes the run's captures as pcap files, reads them back with
// the pcap reader, and checks the case's packets again on what was read:
// the files alone must prove the case. Where tcpdump is installed, it must
// read every file too.
func checkPcaps(t *testing.T, c *Case, r Result) {
	t.Helper()
	if len(r.Captures) != len(pointSpecs) {
		t.Fatalf("captures at %d points, want %d", len(r.Captures), len(pointSpecs))
	}
	dir := t.TempDir()
	back := map[string][]capture.Packet{}
	for point, frames := range r.Captures {
		path := filepath.Join(dir, point+".pcap")
		if err := capture.WritePcap(path, frames); err != nil {
			t.Fatal(err)
		}
		read, err := capture.ReadPcap(path)
		if err != nil {
			t.Fatalf("read %s back: %v", path, err)
		}
		if len(read) != len(frames) {
			t.Fatalf("%s: wrote %d frames, read %d", point, len(frames), len(read))
		}
		for i := range read {
			if !bytes.Equal(read[i].Data, frames[i].Data) || !read[i].Time.Equal(frames[i].Time) {
				t.Fatalf("%s: frame %d differs after the round trip", point, i)
			}
		}
		back[point] = read
		if tcpdump, err := exec.LookPath("tcpdump"); err == nil {
			out, err := exec.Command(tcpdump, "-nn", "-r", path).CombinedOutput()
			if err != nil || strings.Count(string(out), "\n") < len(frames) {
				t.Errorf("tcpdump -r %s: %v\n%s", path, err, out)
			}
		}
	}
	var fault = firstFaultOf(r)
	tm := c.SettingsFor(Config{Family: r.Family}.Complete()).Predict(Measured{IdleBeforeFault: time.Duration(r.IdleBeforeFaultMS * float64(time.Millisecond))})
	got := checkPackets(c.Packets(tm), decodeAll(back), fault)
	if len(got) == 0 {
		t.Fatal("the case declares no packet checks")
	}
	for i, g := range got {
		if !g.OK {
			t.Errorf("from the pcap files: %s: want %s, saw %d %s", g.Desc, g.Want, g.Got, g.Detail)
		}
		if i < len(r.PacketChecks) && g.Got != r.PacketChecks[i].Got {
			t.Errorf("from the pcap files: %s: saw %d, the run saw %d", g.Desc, g.Got, r.PacketChecks[i].Got)
		}
	}
}

// firstFaultOf is when a result's first fault was injected.
func firstFaultOf(r Result) time.Time { return r.faultAt }
