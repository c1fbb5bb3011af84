package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"os"
	"sort"
	"strings"

	"github.com/tcplab/tcplab/experiments"
)

// HTML writes the whole run as one self-contained page: a summary table,
// then per case its verdict, expectations, explanation, knobs and a
// sequence diagram drawn to scale in time. Everything is inline (CSS, SVG);
// nothing is fetched, and no script runs: hovering a packet shows its
// decode through SVG <title> elements.
func HTML(w io.Writer, d Document) error {
	page := htmlPage{Doc: d}
	counts := map[string]int{}
	for i, r := range d.Results {
		counts[r.Verdict]++
		tb, obs := decisive(r)
		c := htmlCase{
			R:        r,
			ID:       fmt.Sprintf("case-%d-%s", i+1, r.Case),
			Name:     caseName(r),
			Textbook: tb,
			Observed: obs,
			Elapsed:  shortDur(msDur(r.ElapsedMS)),
			Diagram:  diagram(r),
		}
		for _, k := range r.Knobs {
			c.Knobs = append(c.Knobs, k.String())
		}
		for _, p := range []struct {
			node string
			p    *experiments.Program
		}{{"client", r.ClientProgram}, {"server", r.ServerProgram}} {
			if p.p != nil {
				c.Programs = append(c.Programs, htmlProgram{Node: p.node, Cmd: p.p.Cmd, Status: programStatus(p.p), Stderr: p.p.StderrTail})
			}
		}
		for _, d := range r.TextbookDiffs {
			c.TextbookDiffs = append(c.TextbookDiffs, textbookDiff(d))
		}
		page.Cases = append(page.Cases, c)
	}
	for _, v := range []string{experiments.Match, experiments.Observed, experiments.Pass, experiments.Mismatch, experiments.Fail, experiments.Error} {
		if counts[v] > 0 {
			page.Counts = append(page.Counts, fmt.Sprintf("%d %s", counts[v], v))
		}
	}
	t, err := htmlTemplate()
	if err != nil {
		return fmt.Errorf("parse the HTML template: %w", err)
	}
	return t.Execute(w, page)
}

// textbookDiff words a difference from the textbook's calls for a reader:
// compare says "expected" and "unexpected" of the textbook's calls.
func textbookDiff(d string) string {
	d = strings.Replace(d, ": expected ", ": the textbook says ", 1)
	return strings.Replace(d, ": unexpected ", ": the textbook has no ", 1)
}

// HTMLPath checks, before any case runs, that the report can be written
// to path; it leaves an existing file as it was.
func HTMLPath(path string) error {
	st, statErr := os.Stat(path)
	if statErr == nil && st.IsDir() {
		return fmt.Errorf("html report %s is a directory", path)
	}
	// Opening without O_TRUNC proves the right to write and changes nothing.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("html report %s cannot be written: %w", path, err)
	}
	f.Close()
	if os.IsNotExist(statErr) {
		return os.Remove(path)
	}
	return nil
}

// WriteHTML renders the report and writes it to path.
func WriteHTML(path string, d Document) error {
	var b bytes.Buffer
	if err := HTML(&b, d); err != nil {
		return fmt.Errorf("html report: %w", err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("html report: %w", err)
	}
	return nil
}

type htmlPage struct {
	Doc    Document
	Counts []string
	Cases  []htmlCase
}

type htmlCase struct {
	R                  experiments.Result
	ID, Name           string
	Textbook, Observed string
	Elapsed            string
	Knobs              []string
	TextbookDiffs      []string
	Programs           []htmlProgram
	Diagram            svgDiagram
}

// htmlProgram is one of the user's own programs (--client-cmd, --server-cmd).
type htmlProgram struct {
	Node, Cmd, Status string
	Stderr            []string
}

func programStatus(pr *experiments.Program) string {
	status := "still running when the lab was removed"
	switch {
	case pr.Stopped != "":
		status = "stopped: still running " + pr.Stopped
	case pr.Signal != "":
		status = "killed by " + pr.Signal
	case pr.Exit != nil:
		status = fmt.Sprintf("exited with status %d", *pr.Exit)
	}
	if pr.AfterFaultMS != nil {
		status += fmt.Sprintf(", %s after the fault", shortDur(msDur(*pr.AfterFaultMS)))
	}
	return status
}

// Diagram geometry, in SVG pixels: times at the left, the client's calls
// left of its line, the server's right of its line.
const (
	svgWidth   = 840.0
	svgTimeX   = 50.0   // right edge of the time labels
	svgTop     = 84.0   // first row
	svgMinRow  = 24.0   // rows closer in time than this are spread out
	svgMaxGap  = 300.0  // the longest gap drawn to scale
	svgBudget  = 1000.0 // what all gaps drawn to scale may add up to
	svgCutH    = 64.0   // height of a cut in the axis
	svgMaxPxMS = 50.0   // never more than this many pixels per ms
	svgOutlier = 3.0    // a gap this many times the next longest is cut...
	svgMinCut  = 10.0   // ...if it lasts at least this many ms
)

var svgX = [3]float64{250, 460, 670}

type svgDiagram struct {
	W, H       float64
	Cols       []svgCol
	LifeTop    float64
	LifeBottom float64
	Rows       []svgRow
	Breaks     []svgBreak
	Arrows     int
	// Bar is the scale bar: a round duration drawn to scale.
	BarX, BarY0, BarY1 float64
	BarLabel           string
	// Spread is the time below which rows are spread out, not to scale.
	Spread string
	Empty  bool
}

type svgCol struct {
	X, BoxX, BoxW float64
	Name, Addr    string
}

type svgBreak struct {
	Y0, Y1, YMid float64
	Zig0, Zig1   string
	Label        string
}

type svgRow struct {
	Kind, Class, Title string
	Y                  float64
	Time               string
	Repeat             bool // the same time as the row before
	From, To           string
	// Arrows.
	X1, X2         float64
	Head           string
	Through        bool
	Dropped        bool
	RouterX        float64
	Cross          string
	DropX          float64
	DropAnchor     string
	LabelX, LabelY float64
	Label          string
	HitX1, HitX2   float64
	// Calls and marks.
	TextX          float64
	Anchor         string
	RuleX1, RuleX2 float64
	DotX           float64
	Star           string
}

// diagram lays a case's steps out on a time axis: to scale, except that
// steps closer than svgMinRow are spread out and long stretches with
// nothing in them are cut and marked.
func diagram(r experiments.Result) svgDiagram {
	steps := ladderSteps(r)
	d := svgDiagram{W: svgWidth}
	addrs := [3]string{r.Addrs["client"], r.Addrs["router"], r.Addrs["server"]}
	for i, n := range colNames {
		w := max(152, float64(len(addrs[i]))*6.3+16)
		d.Cols = append(d.Cols, svgCol{X: svgX[i], BoxX: svgX[i] - w/2, BoxW: w, Name: n, Addr: addrs[i]})
	}
	d.LifeTop = 52
	if len(steps) == 0 {
		d.Empty = true
		d.LifeBottom = svgTop
		d.H = svgTop + 10
		return d
	}
	var gaps []float64
	for i := 1; i < len(steps); i++ {
		gaps = append(gaps, steps[i].at-steps[i-1].at)
	}
	s := pxPerMS(gaps)
	y := svgTop
	prevTime := ""
	for i, st := range steps {
		if i > 0 {
			dt := gaps[i-1]
			h := dt * s
			switch {
			case h > svgMaxGap:
				b := svgBreak{Y0: y + 10, Y1: y + svgCutH - 24, Label: "axis cut: " + fmtMS(dt) + " with nothing to show"}
				b.YMid = (b.Y0 + b.Y1) / 2
				b.Zig0, b.Zig1 = zigzag(b.Y0), zigzag(b.Y1)
				d.Breaks = append(d.Breaks, b)
				y += svgCutH
			default:
				y += max(svgMinRow, h)
			}
		}
		t := fmt.Sprintf("%.1f", st.at)
		row := svgRow{Class: st.class, Title: st.detail, Y: y, Time: t, Repeat: t == prevTime,
			From: colNames[st.from], To: colNames[st.to]}
		prevTime = t
		switch st.kind {
		case stepArrow:
			arrowRow(&row, st)
			d.Arrows++
		case stepCall:
			row.Kind = "call"
			row.Label = st.label
			row.DotX = svgX[st.from]
			row.LabelY = y + 4
			switch st.from {
			case colClient:
				row.TextX, row.Anchor = svgX[st.from]-10, "end"
			case colServer:
				row.TextX, row.Anchor = svgX[st.from]+10, "start"
			default:
				row.TextX, row.Anchor = svgX[st.from]+10, "start"
			}
		case stepMark:
			row.Kind = "mark"
			row.Label = st.label
			row.DotX = svgX[st.from]
			row.RuleX1, row.RuleX2 = svgTimeX+8, svgWidth-8
			row.LabelY = y - 5
			switch st.from {
			case colServer:
				row.TextX, row.Anchor = svgX[st.from]-12, "end"
			default:
				row.TextX, row.Anchor = svgX[st.from]+12, "start"
			}
			row.Star = star(svgX[st.from], y)
		}
		d.Rows = append(d.Rows, row)
	}
	d.LifeBottom = y + 20
	// The scale bar: the round duration closest to 60 px.
	bar := niceDuration(60 / s)
	d.BarLabel = fmtMS(bar)
	d.BarX = 14
	d.BarY1 = d.LifeBottom + 14 + bar*s
	d.BarY0 = d.LifeBottom + 14
	d.H = d.BarY1 + 12
	d.Spread = fmtMS(svgMinRow / s)
	return d
}

func arrowRow(row *svgRow, st step) {
	row.Kind = "arrow"
	row.Through, row.Dropped = st.through, st.dropped
	x1, x2 := svgX[st.from], svgX[st.to]
	row.X1, row.X2 = x1, x2
	row.HitX1, row.HitX2 = min(x1, x2), max(x1, x2)
	row.RouterX = svgX[colRouter]
	dir := 1.0
	if x2 < x1 {
		dir = -1
	}
	y := row.Y
	if st.dropped {
		// The shaft stops short of the router, where a cross stands.
		row.X2 = x2 - dir*7
		row.Cross = fmt.Sprintf("M%.1f %.1fL%.1f %.1fM%.1f %.1fL%.1f %.1f", x2-6, y-6, x2+6, y+6, x2-6, y+6, x2+6, y-6)
		row.DropX = x2 + dir*12
		row.DropAnchor = "start"
		if dir < 0 {
			row.DropAnchor = "end"
		}
	} else {
		tip := x2 - dir*1
		row.X2 = tip - dir*8
		row.Head = fmt.Sprintf("M%.1f %.1fL%.1f %.1fL%.1f %.1fZ", tip, y, tip-dir*9, y-4.5, tip-dir*9, y+4.5)
	}
	// The label sits over the lane next to the sender.
	near := svgX[colRouter]
	if st.from == colRouter {
		near = x2
	}
	row.LabelX = (x1 + near) / 2
	row.LabelY = y - 5
	row.Label = st.label
	if st.resend > 0 {
		row.Label += fmt.Sprintf(" (resend %d)", st.resend)
	}
}

// pxPerMS picks the scale: the longest gap that is not an outlier gets
// svgMaxGap pixels, all gaps drawn to scale fit svgBudget, and outliers
// (a long wait with nothing in it) are cut from the axis.
func pxPerMS(gaps []float64) float64 {
	g := append([]float64(nil), gaps...)
	sort.Sort(sort.Reverse(sort.Float64Slice(g)))
	longest := 0.0
	for i, v := range g {
		if v <= 0 {
			break
		}
		if v >= svgMinCut && i+1 < len(g) && v > svgOutlier*g[i+1] {
			continue // cut
		}
		longest = v
		break
	}
	if longest <= 0 {
		return svgMaxPxMS
	}
	s := min(svgMaxGap/longest, svgMaxPxMS)
	sum := 0.0
	for _, v := range gaps {
		if v*s <= svgMaxGap {
			sum += v
		}
	}
	if sum*s > svgBudget {
		s = svgBudget / sum
	}
	return s
}

// niceDuration rounds ms to 1, 2 or 5 times a power of ten.
func niceDuration(ms float64) float64 {
	if ms <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(ms)))
	for _, m := range []float64{1, 2, 5, 10} {
		if ms <= m*p*1.5 {
			return m * p
		}
	}
	return 10 * p
}

func fmtMS(ms float64) string {
	switch {
	case ms >= 60000:
		return fmt.Sprintf("%.1f min", ms/60000)
	case ms >= 1000:
		return fmt.Sprintf("%.3g s", ms/1000)
	case ms >= 1:
		return fmt.Sprintf("%.3g ms", ms)
	}
	return fmt.Sprintf("%.2g ms", ms)
}

// zigzag is the edge of a cut in the axis, across the diagram.
func zigzag(y float64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "M%.1f %.1f", svgTimeX+8, y)
	up := true
	for x := svgTimeX + 16; x <= svgWidth-8; x += 8 {
		dy := 3.0
		if up {
			dy = -3
		}
		fmt.Fprintf(&b, "L%.1f %.1f", x, y+dy)
		up = !up
	}
	return b.String()
}

// star marks a fault on its node's line.
func star(cx, cy float64) string {
	var b strings.Builder
	for i := range 10 {
		r := 8.0
		if i%2 == 1 {
			r = 3.5
		}
		a := math.Pi/2 + float64(i)*math.Pi/5
		cmd := "L"
		if i == 0 {
			cmd = "M"
		}
		fmt.Fprintf(&b, "%s%.1f %.1f", cmd, cx+r*math.Cos(a), cy-r*math.Sin(a))
	}
	b.WriteString("Z")
	return b.String()
}

// htmlSource is the report's page, parsed when a report is written (not
// at every start of the binary, which agents are too).
//
//go:embed report.html.tmpl
var htmlSource string

func htmlTemplate() (*template.Template, error) {
	return template.New("report").Funcs(template.FuncMap{
		"f":     func(v float64) string { return fmt.Sprintf("%.1f", v) },
		"upper": strings.ToUpper,
		"ms":    func(v float64) string { return fmt.Sprintf("%+.1f", v) },
		"add":   func(a, b float64) float64 { return a + b },
		"sub":   func(a, b float64) float64 { return a - b },
	}).Parse(htmlSource)
}
