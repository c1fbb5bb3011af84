package report

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/experiments"
)

var update = flag.Bool("update", false, "rewrite the golden files (and docs/html-report.png) from the recorded run")

// TestLadderGolden renders the ladder of every recorded case, in both
// families, and compares it with its golden file; -update rewrites them.
func TestLadderGolden(t *testing.T) {
	for _, r := range loadBoth(t).Results {
		name := r.Case
		if r.Family == 6 {
			name += "-6"
		}
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			Ladder(&b, r, TextOptions{})
			golden(t, filepath.Join("testdata", "ladder", name+".txt"), b.Bytes())
		})
	}
}

// TestTextGolden pins the whole text report of the two cases a reader
// should understand at a glance.
func TestTextGolden(t *testing.T) {
	d := loadRun(t)
	for _, id := range []string{"host-crash", "host-reboot"} {
		var b bytes.Buffer
		Text(&b, caseResult(t, d, id))
		golden(t, filepath.Join("testdata", "text", id+".txt"), b.Bytes())
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./report -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test ./report -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// TestLadderFits80Columns: no line of any ladder is wider than a terminal.
func TestLadderFits80Columns(t *testing.T) {
	for _, r := range append(loadBoth(t).Results, longRun()) {
		var b bytes.Buffer
		Ladder(&b, r, TextOptions{})
		for _, l := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
			if n := utf8.RuneCountInString(l); n > 79 {
				t.Errorf("%s: %d columns: %q", r.Case, n, l)
			}
		}
	}
}

var ansiEscape = regexp.MustCompile("\x1b\\[[0-9;]*m")

// TestLadderColour: colour only on request, and the same text beneath it.
func TestLadderColour(t *testing.T) {
	r := caseResult(t, loadRun(t), "host-unreachable")
	var plain, col bytes.Buffer
	Ladder(&plain, r, TextOptions{})
	Ladder(&col, r, TextOptions{Color: true})
	if strings.Contains(plain.String(), "\x1b") {
		t.Error("escape sequences without Color")
	}
	if !ansiEscape.Match(col.Bytes()) {
		t.Error("no colour with Color")
	}
	if got := ansiEscape.ReplaceAllString(col.String(), ""); got != plain.String() {
		t.Errorf("coloured ladder differs from the plain one once escapes are removed:\n%s\n---\n%s", got, plain.String())
	}
}

// TestLadderKeepsEveryPacket: folding retransmissions loses none: the
// counts of the rows add up to the packets the router saw, and every time
// of a folded packet is printed.
func TestLadderKeepsEveryPacket(t *testing.T) {
	for _, r := range append(loadBoth(t).Results, longRun()) {
		want, _ := wantArrows(r)
		got := 0
		var b bytes.Buffer
		Ladder(&b, r, TextOptions{})
		out := b.String()
		for _, f := range foldSteps(ladderSteps(r)) {
			if f.kind != stepArrow {
				continue
			}
			got += len(f.times)
			for _, at := range f.times {
				if ts := fmt.Sprintf("%.1f", at); !strings.Contains(out, ts) {
					t.Errorf("%s: time %s of a packet missing from the ladder", r.Case, ts)
				}
			}
		}
		if got != want {
			t.Errorf("%s: the ladder accounts for %d packets, the timeline has %d", r.Case, got, want)
		}
	}
}

// TestLadderHostCrash reads the host-crash ladder the way a person would:
// the crash, the data going out again and again with nothing coming back,
// the router finally not forwarding it, and recv failing.
func TestLadderHostCrash(t *testing.T) {
	var b bytes.Buffer
	Ladder(&b, caseResult(t, loadRun(t), "host-crash"), TextOptions{})
	out := b.String()
	for _, want := range []string{
		"server link down (crash) *",
		"data 100 bytes ×4",
		"resent at 212.1, 420.1,",
		"1668.1 ms",
		"X not forwarded",
		"├ recv → ETIMEDOUT",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("host-crash ladder lacks %q:\n%s", want, out)
		}
	}
	crash := strings.Index(out, "(crash)")
	if back := strings.LastIndex(out, "<─"); back > crash {
		t.Errorf("a packet reaches the client after the crash:\n%s", out)
	}
}

// longRun is a made-up case with a long run of retransmissions, as
// --kernel-defaults gives, to check folding and wrapping of the times.
func longRun() experiments.Result {
	r := experiments.Result{Case: "long-run"}
	at := 10.0
	for i := range 16 {
		r.Timeline = append(r.Timeline, experiments.Entry{AtMS: at, Kind: "packet", Text: "198.51.100.2:40000 > 203.0.113.2:8000 PSH,ACK seq=1 ack=1 len=1000",
			Packet: &experiments.PacketOut{Point: experiments.PointRouterClient, Proto: "tcp", Src: "198.51.100.2", Dst: "203.0.113.2",
				SrcPort: 40000, DstPort: 8000, Flags: capture.PSH | capture.ACK, Seq: 1, Ack: 1, Len: 1000, Fate: "not forwarded", SrcRole: "client", DstRole: "server"}})
		at += 200 * float64(int(1)<<min(i, 9))
	}
	r.Timeline = append(r.Timeline, experiments.Entry{AtMS: at, Kind: "call", Node: "client", Text: "recv → ETIMEDOUT"})
	return r
}

// TestLadderBulk: a transfer of many segments folds into a few rows, and
// a retransmission in it still stands out on its own row.
func TestLadderBulk(t *testing.T) {
	r := experiments.Result{Case: "bulk"}
	pkt := func(at float64, fromServer bool, seq uint32, n int) {
		p := &experiments.PacketOut{Point: experiments.PointRouterClient, Proto: "tcp", Src: "198.51.100.2", Dst: "203.0.113.2",
			SrcPort: 40000, DstPort: 8000, Flags: capture.ACK, Seq: 1, Ack: seq, Fate: "forwarded", SrcRole: "client", DstRole: "server"}
		if fromServer {
			p = &experiments.PacketOut{Point: experiments.PointRouterServer, Proto: "tcp", Src: "203.0.113.2", Dst: "198.51.100.2",
				SrcPort: 8000, DstPort: 40000, Flags: capture.PSH | capture.ACK, Seq: seq, Ack: 1, Len: n, Fate: "forwarded", SrcRole: "server", DstRole: "client"}
		}
		r.Timeline = append(r.Timeline, experiments.Entry{AtMS: at, Kind: "packet", Packet: p,
			Text: fmt.Sprintf("%s > %s %s seq=%d ack=%d len=%d", p.Src, p.Dst, p.Flags, p.Seq, p.Ack, p.Len)})
	}
	seq := uint32(1)
	at := 1.0
	for i := range 200 {
		pkt(at, true, seq, 1000+i%2*448)
		seq += uint32(1000 + i%2*448)
		pkt(at+0.1, false, seq, 0)
		at += 2
	}
	pkt(at+200, true, seq-1448, 1448) // a retransmission
	var b bytes.Buffer
	Ladder(&b, r, TextOptions{})
	out := b.String()
	if n := strings.Count(out, "\n"); n > 12 {
		t.Errorf("a bulk transfer takes %d lines:\n%s", n, out)
	}
	for _, want := range []string{"data ×200, 244800 bytes", "ACK ×200", "from 1.0 to 399.0 ms", "(resend 1)"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
}
