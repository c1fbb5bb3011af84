package experiments

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/capture"

	"github.com/tcplab/tcplab/internal/labtest"
)

// observed is what each case must show, written out here rather than taken
// from the case's own declaration, so a wrong declaration cannot pass.
var observed = map[string][]string{
	"connect-timeout":     {"client connect ETIMEDOUT"},
	"connect-refused":     {"client connect ECONNREFUSED"},
	"connect-unreachable": {"client connect EHOSTUNREACH", "client connect ENETUNREACH"},
	"accept-aborted": {"server listen ok", "client connect ok", "client close(linger=0) ok",
		"server accept ok", "server recv ECONNRESET", "server recv eof"},
	"server-killed": {"server listen ok", "client connect ok", "server accept ok",
		"server recv killed SIGKILL", "client recv eof", "client send ok", "client poll POLLERR|POLLHUP"},
	"sigpipe": {"server listen ok", "client connect ok", "server accept ok",
		"server recv killed SIGKILL", "client recv eof", "client send ok", "client poll POLLERR|POLLHUP",
		"client send EPIPE SIGPIPE"},
	"host-crash":       {"server listen ok", "client connect ok", "server accept ok", "client send ok", "client recv ETIMEDOUT"},
	"host-unreachable": {"server listen ok", "client connect ok", "server accept ok", "client send ok", "client recv EHOSTUNREACH"},
	"host-reboot": {"server listen ok", "client connect ok", "server accept ok",
		"server recv killed SIGKILL", "client send ok", "client recv ECONNRESET"},
	"host-shutdown": {"server listen ok", "client connect ok", "server accept ok",
		"server recv killed SIGTERM", "client recv eof", "client send ok", "client poll POLLERR|POLLHUP"},
}

// TestCases runs every case on a real lab, side by side, and checks the
// verdict and the observed calls, in order, per node.
func TestCases(t *testing.T) {
	labtest.Privileged(t)
	if len(observed) != len(All()) {
		t.Fatalf("the test knows %d cases, the registry has %d", len(observed), len(All()))
	}
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
	want, ok := observed[c.ID]
	if !ok {
		t.Fatalf("no observation declared for %s", c.ID)
	}
	r := RunCase(c, Config{Family: family})
	if r.Family != family {
		t.Errorf("result family %d, want %d", r.Family, family)
	}
	t.Cleanup(func() { labtest.NoLeftovers(t, r.Lab) })
	if r.Verdict != Match {
		t.Errorf("verdict %s: %s %v", r.Verdict, r.Error, r.Mismatches)
	}
	for _, node := range []string{"client", "server"} {
		var got, exp []string
		for _, e := range r.Events {
			if e.Node == node {
				got = append(got, strings.TrimSpace(fmt.Sprintf("%s %s %s %s", e.Node, e.Syscall, e.Result, e.Signal)))
			}
		}
		for _, w := range want {
			if strings.HasPrefix(w, node+" ") {
				exp = append(exp, w)
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
		if c.Title == "" || c.Summary == "" || c.Trigger == "" || c.Textbook.Summary == "" || len(c.Textbook.Calls) == 0 || c.Steps == nil || c.Settings == nil {
			t.Errorf("%s: incomplete declaration", c.ID)
		}
		for _, cfg := range []Config{{}, {KernelDefaults: true}} {
			e := c.Linux(c.Settings(cfg.withDefaults()))
			if e.Summary == "" || len(e.Calls) == 0 {
				t.Errorf("%s: no Linux expectation", c.ID)
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
	got := checkPackets(c.Packets(settingsOf(c, Config{Family: r.Family}), DefaultPort), decodeAll(back), fault)
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
