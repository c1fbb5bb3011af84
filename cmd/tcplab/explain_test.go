package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"

	"github.com/tcplab/tcplab/experiments"
	"github.com/tcplab/tcplab/internal/labtest"
)

// TestExplainEveryCase: explain prints each case's sections, within 80
// columns, and runs nothing.
func TestExplainEveryCase(t *testing.T) {
	for _, id := range experiments.IDs() {
		k, err := experiments.Lookup(id)
		if err != nil {
			t.Fatal(err)
		}
		e := explanationOf(k)
		o := tcplab(t, "", "explain", id)
		if o.code != 0 || o.stderr != "" {
			t.Errorf("explain %s: %+v", id, o)
			continue
		}
		for _, want := range []string{
			id + ": " + e.Title,
			"\nTrigger\n",
			"\nTextbook (Stevens, UNIX Network Programming)\n",
			"\nLinux, with tcplab's shortened timers (the default)\n",
			"\nLinux, with the kernel's own timers (--kernel-defaults)\n",
			"\nWhy Linux differs\n",
		} {
			if !strings.Contains(o.stdout, want) {
				t.Errorf("explain %s does not show %q:\n%s", id, want, o.stdout)
			}
		}
		// Wrapping changes the spaces, not the words.
		flat := strings.Join(strings.Fields(o.stdout), " ")
		calls := slices.Concat(e.Textbook.Calls, e.Linux[0].Calls, e.Linux[1].Calls)
		for _, s := range append(calls, e.Summary, e.Trigger, e.Textbook.Summary, e.Linux[0].Summary, e.Linux[1].Summary, e.Why) {
			if !strings.Contains(flat, strings.Join(strings.Fields(s), " ")) {
				t.Errorf("explain %s does not show %q", id, s)
			}
		}
		for _, line := range strings.Split(o.stdout, "\n") {
			if utf8.RuneCountInString(line) > 80 && strings.Contains(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "- ")), " ") {
				t.Errorf("explain %s: a line wider than 80 columns: %q", id, line)
			}
		}
	}
}

// TestExplainNotRoot: explain needs no privilege.
func TestExplainNotRoot(t *testing.T) {
	o := tcplabAsNobody(t, "explain", "host-crash")
	if o.code != 0 || !strings.Contains(o.stdout, "host-crash: ") {
		t.Errorf("explain as nobody: %+v", o)
	}
}

func TestExplainList(t *testing.T) {
	o := tcplab(t, "", "explain")
	if o.code != 0 {
		t.Fatalf("explain: %+v", o)
	}
	for _, id := range experiments.IDs() {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(id) + `\s+\S`).MatchString(o.stdout) {
			t.Errorf("explain does not list %s with a summary", id)
		}
	}
	for _, args := range [][]string{{"explain", "all"}, {"explain", "host-crash", "all", "sigpipe"}} {
		if o := tcplab(t, "", args...); o.code != 0 || strings.Count(o.stdout, "\nWhy Linux differs\n") != len(experiments.IDs()) {
			t.Errorf("tcplab %v: status %d, %d explanations; want each case once", args, o.code, strings.Count(o.stdout, "\nWhy Linux differs\n"))
		}
	}
}

func TestExplainUnknown(t *testing.T) {
	for _, args := range [][]string{{"explain", "host-crsh"}, {"explain", "host-crash", "nosuchcase"}} {
		o := tcplab(t, "", args...)
		_, lookupErr := experiments.Lookup(args[len(args)-1])
		if o.code != 2 || o.stdout != "" || strings.TrimSpace(o.stderr) != "tcplab: "+lookupErr.Error() {
			t.Errorf("tcplab %v: %+v; want status 2 and the one line %q", args, o, lookupErr)
		}
	}
	if o := tcplab(t, "", "explain", "host-crsh"); !strings.Contains(o.stderr, `did you mean "host-crash"`) {
		t.Errorf("explain host-crsh: %+v", o)
	}
}

// TestExplainJSON: the JSON gives both timer settings, and the kernel's own
// timers give other windows than the shortened ones.
func TestExplainJSON(t *testing.T) {
	o := tcplab(t, "", "explain", "--json", "host-crash")
	if o.code != 0 {
		t.Fatalf("explain --json: %+v", o)
	}
	var doc []struct {
		Case     string `json:"case"`
		Title    string `json:"title"`
		Textbook struct {
			Summary string   `json:"summary"`
			Calls   []string `json:"calls"`
		} `json:"textbook"`
		Linux []struct {
			KernelDefaults bool     `json:"kernel_defaults"`
			Knobs          []string `json:"knobs"`
			Summary        string   `json:"summary"`
			Calls          []string `json:"calls"`
		} `json:"linux"`
		Why string `json:"why"`
	}
	if err := json.Unmarshal([]byte(o.stdout), &doc); err != nil {
		t.Fatalf("JSON: %v\n%s", err, o.stdout)
	}
	if len(doc) != 1 || doc[0].Case != "host-crash" || doc[0].Title == "" || doc[0].Why == "" || len(doc[0].Textbook.Calls) == 0 || len(doc[0].Linux) != 2 {
		t.Fatalf("JSON document: %+v", doc)
	}
	fast, slow := doc[0].Linux[0], doc[0].Linux[1]
	if fast.KernelDefaults || !slow.KernelDefaults || len(fast.Calls) == 0 || slices.Equal(fast.Calls, slow.Calls) || slices.Equal(fast.Knobs, slow.Knobs) {
		t.Errorf("Linux expectations, shortened and kernel timers: %+v / %+v", fast, slow)
	}
}

// tcplabAsNobody runs tcplab as user nobody, from a copy of the test binary
// that nobody can read.
func tcplabAsNobody(t *testing.T, args ...string) outcome {
	t.Helper()
	labtest.Privileged(t) // to switch to an unprivileged user
	dir, err := os.MkdirTemp("", "tcplab-nobody")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "tcplab")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{cliEnv + "=1", "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run tcplab %v as nobody: %v", args, err)
	}
	return outcome{code, o.String(), e.String()}
}
