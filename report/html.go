package report

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"math"
	"os"
	"sort"
	"strings"

	"github.com/tcplab/tcplab/experiments"
	"github.com/tcplab/tcplab/topology"
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
	for _, v := range []string{experiments.Match, experiments.Observed, experiments.Mismatch, experiments.Error} {
		if counts[v] > 0 {
			page.Counts = append(page.Counts, fmt.Sprintf("%d %s", counts[v], v))
		}
	}
	return htmlTmpl.Execute(w, page)
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
	case pr.TimedOut:
		status = "stopped: still running after --client-timeout"
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
	addrs := [3]string{topology.ClientIP.String(), topology.RouterClientIP.String() + " | " + topology.RouterServerIP.String(), topology.ServerIP.String()}
	if r.Family == 6 {
		addrs = [3]string{topology.ClientIP6.String(), topology.RouterClientIP6.String() + " | " + topology.RouterServerIP6.String(), topology.ServerIP6.String()}
	}
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

var htmlTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"f":     func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"upper": strings.ToUpper,
	"ms":    func(v float64) string { return fmt.Sprintf("%+.1f", v) },
	"add":   func(a, b float64) float64 { return a + b },
	"sub":   func(a, b float64) float64 { return a - b },
}).Parse(htmlSource))

const htmlSource = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tcplab report{{if .Doc.Kernel}} · kernel {{.Doc.Kernel}}{{end}}</title>
<style>
:root { --fg: #1d2127; --muted: #5c6570; --line: #d5d9de; --bg: #fff; --match: #1a7f37; --mismatch: #b42318; --error: #9a6700;
  --syn: #1f5fbf; --ack: #57606a; --data: #0a3069; --fin: #b35900; --rst: #c0162b; --icmp: #8250df; --fault: #c0162b; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1280px; padding: 20px 28px 40px; color: var(--fg); background: var(--bg);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", "Liberation Sans", sans-serif; }
h1 { font-size: 26px; margin: 0 0 2px; }
h2 { font-size: 21px; margin: 0 0 4px; }
h3 { font-size: 14px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 14px 0 4px; }
.meta { color: var(--muted); margin: 0 0 18px; }
code, .mono { font-family: "DejaVu Sans Mono", "Liberation Mono", ui-monospace, monospace; font-size: 13px; }
table { border-collapse: collapse; }
table.summary { width: 100%; margin-bottom: 28px; }
table.summary th, table.summary td { text-align: left; padding: 5px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
table.summary th { font-size: 13px; color: var(--muted); font-weight: 600; }
table.summary a { color: inherit; font-weight: 600; }
.badge { display: inline-block; padding: 1px 9px; border-radius: 10px; font-size: 13px; font-weight: 700; color: #fff;
  letter-spacing: .03em; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
.badge.match { background: var(--match); } .badge.observed { background: #0969da; } .badge.mismatch { background: var(--mismatch); } .badge.error { background: var(--error); }
section.case { border-top: 3px solid var(--fg); padding-top: 14px; margin-top: 30px; }
.case-head { display: flex; flex-wrap: wrap; gap: 6px 14px; align-items: baseline; }
.case-head .title { font-weight: 400; color: var(--muted); }
.trigger { margin: 6px 0 12px; }
.case-body { display: grid; grid-template-columns: minmax(0, 860px) minmax(300px, 1fr); gap: 10px 30px; align-items: start; }
@media (max-width: 1150px) { .case-body { grid-template-columns: minmax(0, 1fr); } }
.facts p { margin: 0 0 6px; }
.facts code { overflow-wrap: anywhere; }
.facts ul { margin: 0 0 6px; padding-left: 20px; }
.facts .ok { color: var(--match); font-weight: 700; } .facts .no { color: var(--mismatch); font-weight: 700; }
.verdict-line { font-weight: 600; }
pre.stderr { font-size: 12px; background: #f6f8fa; padding: 6px 8px; white-space: pre-wrap; margin: 0 0 6px; }
table.calls td { padding: 1px 10px 1px 0; font-size: 13px; }
table.calls td.t { text-align: right; font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; color: var(--muted); }
.diagram svg { width: 100%; max-width: 860px; height: auto; display: block; }
.legend { font-size: 12.5px; color: var(--muted); margin: 4px 0 0; max-width: 860px; }
.legend b { color: var(--fg); font-weight: 600; } .legend b.x { color: var(--fault); }
svg text { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 12px; fill: var(--fg); }
svg .node rect { fill: #f3f5f8; stroke: #8c959f; }
svg .node .name { font-weight: 700; font-size: 14px; }
svg .node .addr { font-size: 10.5px; fill: var(--muted); }
svg .life { stroke: #8c959f; stroke-width: 1.5; }
svg .time { font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: 11px; fill: var(--muted); }
svg .time.repeat { fill: #afb8c1; }
svg .halo { paint-order: stroke; stroke: #fff; stroke-width: 4px; stroke-linejoin: round; }
svg .arrow .shaft { stroke-width: 2; }
svg .arrow .hit { stroke: transparent; stroke-width: 14; }
svg .arrow:hover .shaft { stroke-width: 3.5; }
svg .arrow:hover .label { font-weight: 700; }
svg .arrow .label { font-size: 12px; }
svg .arrow .via { stroke: #fff; stroke-width: 1.5; }
svg .syn .shaft, svg .syn .cross { stroke: var(--syn); } svg .syn .head, svg .syn .via { fill: var(--syn); } svg .syn .label { fill: var(--syn); }
svg .ack .shaft { stroke: var(--ack); } svg .ack .head, svg .ack .via { fill: var(--ack); } svg .ack .label { fill: var(--ack); }
svg .data .shaft { stroke: var(--data); } svg .data .head, svg .data .via { fill: var(--data); } svg .data .label { fill: var(--data); font-weight: 600; }
svg .fin .shaft { stroke: var(--fin); } svg .fin .head, svg .fin .via { fill: var(--fin); } svg .fin .label { fill: var(--fin); font-weight: 600; }
svg .rst .shaft { stroke: var(--rst); } svg .rst .head, svg .rst .via { fill: var(--rst); } svg .rst .label { fill: var(--rst); font-weight: 700; }
svg .icmp .shaft { stroke: var(--icmp); stroke-dasharray: 6 3; } svg .icmp .head, svg .icmp .via { fill: var(--icmp); } svg .icmp .label { fill: var(--icmp); font-weight: 600; }
svg .other .shaft { stroke: var(--ack); } svg .other .head { fill: var(--ack); }
svg .arrow .cross { stroke: var(--fault); stroke-width: 3; }
svg .arrow .dropnote { fill: var(--fault); font-size: 11.5px; font-weight: 600; }
svg .call .dot { stroke: #fff; stroke-width: 1.5; }
svg .call.ok .dot { fill: var(--match); } svg .call.ok .lbl { fill: var(--match); }
svg .call.err .dot { fill: var(--mismatch); } svg .call.err .lbl { fill: var(--mismatch); font-weight: 700; }
svg .call.eof .dot { fill: var(--fin); } svg .call.eof .lbl { fill: var(--fin); font-weight: 600; }
svg .mark .rule { stroke: var(--fault); stroke-width: 1.2; stroke-dasharray: 5 4; }
svg .mark .star { fill: var(--fault); stroke: #fff; stroke-width: 1; }
svg .mark .lbl { fill: var(--fault); font-weight: 700; font-size: 12.5px; }
svg .mark.note .rule { stroke: #8c959f; } svg .mark.note .star { fill: #8c959f; } svg .mark.note .lbl { fill: var(--muted); font-weight: 400; font-style: italic; }
svg .cut rect { fill: #eef1f4; } svg .cut path { fill: none; stroke: #8c959f; stroke-width: 1.2; }
svg .cut text { fill: var(--muted); font-size: 11.5px; font-style: italic; }
svg .bar line { stroke: var(--fg); stroke-width: 2; } svg .bar text { font-size: 11px; fill: var(--muted); }
footer { margin-top: 36px; color: var(--muted); font-size: 13px; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  @page { margin: 14mm; }
  section.case { break-before: page; border-top: none; }
  .case-body { grid-template-columns: minmax(0, 1fr); }
  /* A case starts a page: its title, and its diagram scaled to fit below. */
  .diagram { break-inside: avoid; }
  .diagram svg { max-height: 175mm; }
  table.summary tr { break-inside: avoid; }
  a { text-decoration: none; }
  svg .arrow .hit { display: none; }
}
</style>
</head>
<body>
<header>
<h1>tcplab report</h1>
<p class="meta">{{if .Doc.Kernel}}Linux kernel {{.Doc.Kernel}} · {{end}}{{if .Doc.Version}}tcplab {{.Doc.Version}} · {{end}}{{len .Cases}} case run{{if ne (len .Cases) 1}}s{{end}}{{range $i, $c := .Counts}}{{if eq $i 0}}: {{else}}, {{end}}{{$c}}{{end}}</p>
</header>
<section id="summary">
<table class="summary">
<thead><tr><th>case</th><th>what happens</th><th>textbook says</th><th>Linux observed</th><th>verdict</th></tr></thead>
<tbody>
{{- range .Cases}}
<tr data-case="{{.R.Case}}"><td><a href="#{{.ID}}">{{.Name}}</a></td><td>{{.R.Title}}</td><td class="mono">{{.Textbook}}</td><td class="mono">{{.Observed}}</td><td><span class="badge {{.R.Verdict}}">{{.R.Verdict}}</span></td></tr>
{{- end}}
</tbody>
</table>
</section>
{{range .Cases}}
<section class="case" id="{{.ID}}" data-case="{{.R.Case}}" data-verdict="{{.R.Verdict}}" data-arrows="{{.Diagram.Arrows}}">
<div class="case-head"><h2>{{.Name}} <span class="title">{{.R.Title}}</span></h2><span class="badge verdict {{.R.Verdict}}">{{upper .R.Verdict}}</span></div>
<p class="trigger"><b>What the lab does:</b> {{.R.Trigger}}</p>
<div class="case-body">
<div class="diagram">
{{- with .Diagram}}{{$d := .}}
<svg class="ladder" viewBox="0 0 {{f .W}} {{f .H}}" width="{{f .W}}" height="{{f .H}}" role="img" aria-label="sequence diagram: client, router, server; time flows down">
{{- range .Cols}}
<line class="life" x1="{{f .X}}" y1="{{f $d.LifeTop}}" x2="{{f .X}}" y2="{{f $d.LifeBottom}}"></line>
{{- end}}
{{- range .Cols}}
<g class="node"><rect x="{{f .BoxX}}" y="6" width="{{f .BoxW}}" height="44" rx="6"></rect><text class="name" x="{{f .X}}" y="25" text-anchor="middle">{{.Name}}</text><text class="addr" x="{{f .X}}" y="41" text-anchor="middle">{{.Addr}}</text></g>
{{- end}}
<text class="time" x="{{f 50.0}}" y="41" text-anchor="end">ms</text>
{{- range .Breaks}}
<g class="cut"><rect x="58" y="{{f .Y0}}" width="774" height="{{f (sub .Y1 .Y0)}}"></rect><path d="{{.Zig0}}"></path><path d="{{.Zig1}}"></path><text class="halo" x="460" y="{{f .YMid}}" dy="4" text-anchor="middle">{{.Label}}</text></g>
{{- end}}
{{- range .Rows}}
{{- if eq .Kind "arrow"}}
<g class="arrow {{.Class}}{{if .Dropped}} dropped{{end}}" data-from="{{.From}}" data-to="{{.To}}"><title>{{.Title}}</title><line class="hit" x1="{{f .HitX1}}" y1="{{f .Y}}" x2="{{f .HitX2}}" y2="{{f .Y}}"></line><line class="shaft" x1="{{f .X1}}" y1="{{f .Y}}" x2="{{f .X2}}" y2="{{f .Y}}"></line>{{if .Head}}<path class="head" d="{{.Head}}"></path>{{end}}{{if .Through}}<circle class="via" cx="{{f .RouterX}}" cy="{{f .Y}}" r="3.5"></circle>{{end}}{{if .Dropped}}<path class="cross" d="{{.Cross}}"></path><text class="dropnote halo" x="{{f .DropX}}" y="{{f .Y}}" dy="4" text-anchor="{{.DropAnchor}}">not forwarded</text>{{end}}<text class="label halo" x="{{f .LabelX}}" y="{{f .LabelY}}" text-anchor="middle">{{.Label}}</text><text class="time{{if .Repeat}} repeat{{end}}" x="50" y="{{f .Y}}" dy="4" text-anchor="end">{{.Time}}</text></g>
{{- else if eq .Kind "call"}}
<g class="call {{.Class}}" data-node="{{.From}}"><title>{{.Title}}</title><circle class="dot" cx="{{f .DotX}}" cy="{{f .Y}}" r="4.5"></circle><text class="lbl halo" x="{{f .TextX}}" y="{{f .Y}}" dy="4" text-anchor="{{.Anchor}}">{{.Label}}</text><text class="time{{if .Repeat}} repeat{{end}}" x="50" y="{{f .Y}}" dy="4" text-anchor="end">{{.Time}}</text></g>
{{- else}}
<g class="mark {{.Class}}" data-node="{{.From}}"><title>{{.Title}}</title><line class="rule" x1="{{f .RuleX1}}" y1="{{f .Y}}" x2="{{f .RuleX2}}" y2="{{f .Y}}"></line><path class="star" d="{{.Star}}"></path><text class="lbl halo" x="{{f .TextX}}" y="{{f .LabelY}}" text-anchor="{{.Anchor}}">{{.Label}}</text><text class="time{{if .Repeat}} repeat{{end}}" x="50" y="{{f .Y}}" dy="4" text-anchor="end">{{.Time}}</text></g>
{{- end}}
{{- end}}
{{- if not .Empty}}
<g class="bar"><line x1="{{f .BarX}}" y1="{{f .BarY0}}" x2="{{f .BarX}}" y2="{{f .BarY1}}"></line><line x1="{{f (sub .BarX 4)}}" y1="{{f .BarY0}}" x2="{{f (add .BarX 4)}}" y2="{{f .BarY0}}"></line><line x1="{{f (sub .BarX 4)}}" y1="{{f .BarY1}}" x2="{{f (add .BarX 4)}}" y2="{{f .BarY1}}"></line><text x="{{f (add .BarX 9)}}" y="{{f .BarY1}}">{{.BarLabel}} to scale</text></g>
{{- end}}
</svg>
<p class="legend">Time flows down, in ms since the case started, to scale (the bar at the bottom), except that rows less than {{.Spread}} apart are spread out{{if .Breaks}} and the shaded stretches, where nothing happened for a long time, are cut short{{end}}. Each packet is an arrow from the host that sent it: a dot on the router's line means the router forwarded it, <b class="x">✕</b> that it did not. <b>Hover</b> over a packet for its full decode. Dots beside a host are its calls and their results; red dashed lines are the faults the lab injected and the signals it sent.</p>
{{- end}}
</div>
<div class="facts">
<h3>Verdict</h3>
<p class="verdict-line">{{if eq .R.Verdict "match"}}MATCH: this kernel did as the Linux expectation declares{{if .R.TextbookAgrees}}; the calls and errors are the textbook's.{{else}}; the textbook differs:{{end}}{{else if eq .R.Verdict "observed"}}OBSERVED: your programs ran under the fault; there is no declared expectation for them, only what they did.{{else if eq .R.Verdict "mismatch"}}MISMATCH: this kernel did not do what the Linux expectation declares:{{else}}ERROR: the case could not run: {{.R.Error}}{{end}}</p>
{{- if .R.Mismatches}}<ul>{{range .R.Mismatches}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{- if and (eq .R.Verdict "match") .TextbookDiffs}}<ul>{{range .TextbookDiffs}}<li>{{.}}</li>{{end}}</ul>{{end}}
<h3>Textbook</h3>
<p>{{.R.Textbook.Summary}}</p>
<h3>Linux</h3>
<p>{{.R.Expected.Summary}}</p>
{{- range .Programs}}
<h3>Your {{.Node}} program</h3>
<p><code>{{.Cmd}}</code>: {{.Status}}</p>
{{- if .Stderr}}<pre class="stderr">{{range .Stderr}}{{.}}
{{end}}</pre>{{end}}
{{- end}}
{{- if .R.Why}}
<h3>Why</h3>
<p>{{.R.Why}}</p>
{{- end}}
<h3>Knobs</h3>
<p>{{if .Knobs}}<code>{{range $i, $k := .Knobs}}{{if $i}}, {{end}}{{$k}}{{end}}</code>{{else}}none: the kernel's own settings{{end}}{{if .R.Basis}}; {{.R.Basis}}{{end}}</p>
{{- if .R.Events}}
<h3>Calls (ms from the fault before each)</h3>
<table class="calls">{{range .R.Events}}<tr><td class="t">{{ms .TMS}}</td><td>{{.Node}}</td><td>{{.Syscall}} → {{.Result}}{{if .Signal}} + {{.Signal}}{{end}}</td></tr>{{end}}</table>
{{- end}}
{{- if .R.PacketChecks}}
<h3>Packets</h3>
<ul class="checks">{{range .R.PacketChecks}}<li><span class="{{if .OK}}ok{{else}}no{{end}}">{{if .OK}}ok{{else}}NO{{end}}</span> {{.Desc}}: {{.Want}}, saw {{.Got}}{{if .Detail}}; {{.Detail}}{{end}}</li>{{end}}</ul>
{{- end}}
<p class="meta">{{if gt .R.ElapsedMS 0.0}}{{.Elapsed}} · {{end}}lab {{.R.Lab}}</p>
</div>
</div>
</section>
{{end}}
<footer>Written by tcplab. This file is self-contained: it loads nothing and runs no script.</footer>
</body>
</html>
`
