package report

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/experiments"
	"golang.org/x/net/html"
)

// TestHTMLSelfContained: the page references nothing outside itself and
// runs no script, so it opens offline and as a mail attachment.
func TestHTMLSelfContained(t *testing.T) {
	var b bytes.Buffer
	if err := HTML(&b, loadRun(t)); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, bad := range []string{"<script", "<link", "<img", "<iframe", "@import", "url(", "src=", "://"} {
		if strings.Contains(page, bad) {
			t.Errorf("the report contains %q", bad)
		}
	}
	for _, want := range []string{"<style>", "@media print", "<svg", "<title>"} {
		if !strings.Contains(page, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
}

// TestHTMLPath: an unwritable path is refused before a run, an existing
// file is left as it was, and a new one is not left behind.
func TestHTMLPath(t *testing.T) {
	dir := t.TempDir()
	if err := HTMLPath(filepath.Join(dir, "no", "such", "dir", "r.html")); err == nil {
		t.Error("a path in a missing directory is accepted")
	}
	if err := HTMLPath(dir); err == nil {
		t.Error("a directory is accepted")
	}
	fresh := filepath.Join(dir, "fresh.html")
	if err := HTMLPath(fresh); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Error("the check left a file behind")
	}
	old := filepath.Join(dir, "old.html")
	os.WriteFile(old, []byte("before"), 0o644)
	if err := HTMLPath(old); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(old); string(b) != "before" {
		t.Error("the check changed an existing file")
	}
	if err := WriteHTML(old, loadRun(t)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(old); !bytes.HasPrefix(b, []byte("<!DOCTYPE html>")) {
		t.Error("WriteHTML wrote no page")
	}
}

// TestHTMLScale: the axis is to scale where it is not cut: equal gaps get
// equal heights, and a gap that dwarfs the others is cut and says how long.
func TestHTMLScale(t *testing.T) {
	d := loadRun(t)
	// connect-timeout's SYNs are 1 s apart: their rows too.
	g := diagram(caseResult(t, d, "connect-timeout"))
	var ys []float64
	for _, r := range g.Rows {
		if r.Kind == "arrow" {
			ys = append(ys, r.Y)
		}
	}
	if len(ys) != 6 {
		t.Fatalf("connect-timeout: %d arrows, want 6", len(ys))
	}
	for i := 2; i < len(ys); i++ {
		if a, b := ys[i]-ys[i-1], ys[1]-ys[0]; a < b*0.95 || a > b*1.05 {
			t.Errorf("connect-timeout: SYN gaps of the same second drawn %.0f and %.0f px", b, a)
		}
	}
	if len(g.Breaks) != 0 {
		t.Errorf("connect-timeout: axis cut %d times", len(g.Breaks))
	}
	// host-reboot: the reboot's 33 ms dwarf the milliseconds around it.
	g = diagram(caseResult(t, d, "host-reboot"))
	if len(g.Breaks) != 1 || !strings.Contains(g.Breaks[0].Label, "32.9 ms") {
		t.Errorf("host-reboot: breaks %+v, want one of 32.9 ms", g.Breaks)
	}
}

// TestHTMLInBrowser opens the report of the recorded run in headless
// Chromium, checks through the DOM the browser built that every case has
// its diagram with one arrow per packet and its verdict, and saves
// screenshots as artefacts (in $TCPLAB_ARTEFACTS, or a temporary
// directory). With -update it also rewrites docs/html-report.png.
func TestHTMLInBrowser(t *testing.T) {
	browser := findChromium(t)
	d := loadBoth(t)
	out := os.Getenv("TCPLAB_ARTEFACTS")
	if out == "" {
		out = t.TempDir()
	} else if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(out, "report.html")
	if err := WriteHTML(page, d); err != nil {
		t.Fatal(err)
	}
	dom := chromium(t, browser, "--dump-dom", page)
	doc, err := html.Parse(strings.NewReader(dom))
	if err != nil {
		t.Fatalf("parse the DOM: %v", err)
	}
	sections := findAll(doc, func(n *html.Node) bool { return n.Data == "section" && hasClass(n, "case") })
	if len(sections) != len(d.Results) {
		t.Fatalf("%d case sections in the DOM, want %d", len(sections), len(d.Results))
	}
	rows := findAll(doc, func(n *html.Node) bool { return n.Data == "tr" && attr(n, "data-case") != "" })
	if len(rows) != len(d.Results) {
		t.Errorf("%d rows in the summary table, want %d", len(rows), len(d.Results))
	}
	for i, r := range d.Results {
		s := sections[i]
		if got := attr(s, "data-case"); got != r.Case {
			t.Errorf("section %d is %q, want %q", i, got, r.Case)
			continue
		}
		badge := findAll(s, func(n *html.Node) bool { return hasClass(n, "verdict") && hasClass(n, "badge") })
		if len(badge) != 1 || text(badge[0]) != strings.ToUpper(r.Verdict) {
			t.Errorf("%s: verdict badge %v, want %s", r.Case, texts(badge), strings.ToUpper(r.Verdict))
		}
		svgs := findAll(s, func(n *html.Node) bool { return n.Data == "svg" && hasClass(n, "ladder") })
		if len(svgs) != 1 {
			t.Errorf("%s: %d diagrams", r.Case, len(svgs))
			continue
		}
		arrows := findAll(svgs[0], func(n *html.Node) bool { return n.Data == "g" && hasClass(n, "arrow") })
		crosses := findAll(svgs[0], func(n *html.Node) bool { return n.Data == "path" && hasClass(n, "cross") })
		want, dropped := wantArrows(r)
		if len(arrows) != want || len(crosses) != dropped {
			t.Errorf("%s: %d arrows, %d not forwarded; want %d and %d", r.Case, len(arrows), len(crosses), want, dropped)
		}
		for _, a := range arrows {
			titles := findAll(a, func(n *html.Node) bool { return n.Data == "title" })
			if len(titles) != 1 || !strings.Contains(text(titles[0]), " ms, seen at ") {
				t.Errorf("%s: an arrow without its decode to hover: %v", r.Case, texts(titles))
				break
			}
		}
		marks := findAll(svgs[0], func(n *html.Node) bool { return n.Data == "g" && hasClass(n, "fault") })
		if faults := countKind(r.Timeline, "fault"); len(marks) != faults {
			t.Errorf("%s: %d fault rows, want %d", r.Case, len(marks), faults)
		}
	}
	shot(t, browser, page, filepath.Join(out, "report.png"))
	for _, id := range []string{"host-crash", "host-reboot"} {
		one := d
		one.Results = []experiments.Result{caseResult(t, d, id)}
		p := filepath.Join(out, id+".html")
		if err := WriteHTML(p, one); err != nil {
			t.Fatal(err)
		}
		png := filepath.Join(out, id+".png")
		shot(t, browser, p, png)
		if id == "host-crash" && *update {
			docsShot(t, png, "../docs/html-report.png")
		}
	}
	t.Logf("screenshots in %s", out)
}

func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found: this test opens the HTML report in a real browser; " +
		".ci/run installs it (Debian package chromium: apt-get install chromium)")
	return ""
}

// chromium runs the browser headless on a local file, with everything
// that would reach the network turned off, and returns its stdout.
func chromium(t *testing.T, browser string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	home := t.TempDir()
	file := args[len(args)-1]
	argv := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + filepath.Join(home, "profile")}
	argv = append(argv, args[:len(args)-1]...)
	argv = append(argv, "file://"+file)
	cmd := exec.CommandContext(ctx, browser, argv...)
	cmd.Env = append(os.Environ(), "HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", browser, strings.Join(argv, " "), err, stderr.String())
	}
	return stdout.String()
}

// shot saves a screenshot and checks it shows something.
func shot(t *testing.T, browser, page, path string) {
	t.Helper()
	chromium(t, browser, "--screenshot="+path, "--window-size=1200,2000", "--hide-scrollbars", page)
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() != 1200 || b.Dy() != 2000 {
		t.Errorf("screenshot %s is %v", path, b)
	}
	if inked(img) < 0.01 {
		t.Errorf("screenshot %s is blank", path)
	}
}

// inked is the share of pixels that are not white.
func inked(img image.Image) float64 {
	b := img.Bounds()
	n := 0
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			if r, g, bl, _ := img.At(x, y).RGBA(); r < 0xf000 || g < 0xf000 || bl < 0xf000 {
				n++
			}
		}
	}
	return float64(n) / float64(b.Dx()*b.Dy()/4)
}

// docsShot stores the screenshot for the README, cropped to the case and
// reduced to a palette, which keeps it small.
func docsShot(t *testing.T, src, dst string) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	crop := image.Rect(0, 0, img.Bounds().Dx(), min(img.Bounds().Dy(), lastInkRow(img)+24))
	pal := image.NewPaletted(crop, paletteOf(img, crop))
	for y := crop.Min.Y; y < crop.Max.Y; y++ {
		for x := crop.Min.X; x < crop.Max.X; x++ {
			pal.Set(x, y, img.At(x, y))
		}
	}
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&b, pal); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s: %d bytes", dst, b.Len())
}

func lastInkRow(img image.Image) int {
	b := img.Bounds()
	for y := b.Max.Y - 1; y >= b.Min.Y; y-- {
		for x := b.Min.X; x < b.Max.X; x++ {
			if r, g, bl, _ := img.At(x, y).RGBA(); r < 0xf000 || g < 0xf000 || bl < 0xf000 {
				return y
			}
		}
	}
	return b.Max.Y
}

// paletteOf picks the 256 most used colours, quantised to 4 bits a
// channel so antialiasing shades merge.
func paletteOf(img image.Image, r image.Rectangle) color.Palette {
	count := map[color.RGBA]int{}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			c.R, c.G, c.B, c.A = c.R&0xf0|c.R>>4, c.G&0xf0|c.G>>4, c.B&0xf0|c.B>>4, 0xff
			count[c]++
		}
	}
	type kv struct {
		c color.RGBA
		n int
	}
	var all []kv
	for c, n := range count {
		all = append(all, kv{c, n})
	}
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i], all[j]
		return a.n > b.n || (a.n == b.n && fmt.Sprint(a.c) < fmt.Sprint(b.c))
	})
	var p color.Palette
	for i := 0; i < len(all) && i < 256; i++ {
		p = append(p, all[i].c)
	}
	return p
}

func findAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

var spaces = regexp.MustCompile(`\s+`)

func hasClass(n *html.Node, c string) bool {
	for _, x := range spaces.Split(attr(n, "class"), -1) {
		if x == c {
			return true
		}
	}
	return false
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.TrimSpace(b.String())
}

func texts(ns []*html.Node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, text(n))
	}
	return out
}

func countKind(tl []experiments.Entry, kind string) int {
	n := 0
	for _, e := range tl {
		if e.Kind == kind {
			n++
		}
	}
	return n
}
