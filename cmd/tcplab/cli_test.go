package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/experiments"
	"github.com/tcplab/tcplab/internal/labtest"
	"github.com/tcplab/tcplab/topology"
)

// The test binary is also tcplab: with cliEnv set it runs the CLI, so the
// tests drive whole processes with real exit statuses.
const cliEnv = "TCPLAB_TEST_AS_CLI"

func TestMain(m *testing.M) {
	if os.Getenv(cliEnv) != "" || experiments.IsAgent() {
		main()
	}
	os.Exit(m.Run())
}

type outcome struct {
	code           int
	stdout, stderr string
}

func tcplab(t *testing.T, stdin string, args ...string) outcome {
	t.Helper()
	return tcplabAs(t, nil, stdin, args...)
}

func tcplabAs(t *testing.T, cred *syscall.Credential, stdin string, args ...string) outcome {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Args[0] = "tcplab"
	cmd.Env = append(os.Environ(), cliEnv+"=1")
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run tcplab %v: %v", args, err)
	}
	return outcome{code, o.String(), e.String()}
}

// labsNow lists the labs whose owner is gone (or that have no state file):
// what a failed command could have left. Labs of tcplab processes that still
// run, such as other tests', do not count.
func labsNow(t *testing.T) string {
	ids, err := topology.Labs()
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, id := range ids {
		if st, err := topology.ReadState(id); err == nil && (st.OwnerAlive() || st.Kind == topology.KindUp) {
			continue
		}
		left = append(left, id)
	}
	return strings.Join(left, ",")
}

func TestList(t *testing.T) {
	o := tcplab(t, "", "list")
	if o.code != 0 {
		t.Fatalf("list: %+v", o)
	}
	for _, id := range experiments.IDs() {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(id) + `\s+\S`).MatchString(o.stdout) {
			t.Errorf("list does not show %s with a summary", id)
		}
	}
}

// TestDocsInSync: every case of the registry is documented in docs/cases.md
// and the README, and the docs name no case the registry lacks.
func TestDocsInSync(t *testing.T) {
	docs, err := os.ReadFile("../../docs/cases.md")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, id := range experiments.IDs() {
		known[id] = true
		if !regexp.MustCompile(`(?m)^## ` + regexp.QuoteMeta(id) + `\b`).Match(docs) {
			t.Errorf("docs/cases.md has no section \"## %s\"", id)
		}
		if !bytes.Contains(readme, []byte("`"+id+"`")) {
			t.Errorf("README.md does not list `%s`", id)
		}
	}
	for _, m := range regexp.MustCompile(`(?m)^## (\S+)`).FindAllSubmatch(docs, -1) {
		if !known[string(m[1])] {
			t.Errorf("docs/cases.md documents %q, which is not a case", m[1])
		}
	}
}

func TestHelpOnEveryVerb(t *testing.T) {
	for _, verb := range []string{"list", "run", "up", "status", "exec", "fault", "down", "clean"} {
		o := tcplab(t, "", verb, "--help")
		if o.code != 0 || !strings.Contains(o.stdout, "USAGE") {
			t.Errorf("%s --help: %+v", verb, o)
		}
	}
	if o := tcplab(t, "", "--version"); o.code != 0 || !strings.Contains(o.stdout, "tcplab version") {
		t.Errorf("--version: %+v", o)
	}
}

// TestNotRoot: without root every lab verb refuses in one line, status 2.
func TestNotRoot(t *testing.T) {
	labtest.Privileged(t) // to switch to an unprivileged user
	dir, err := os.MkdirTemp("", "tcplab-cli")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	exe, _ := os.Executable()
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "tcplab")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	for _, args := range [][]string{{"run", "all"}, {"up"}, {"down", "x"}, {"clean"}, {"status"}, {"exec", "x", "client", "--", "true"}} {
		cmd := exec.Command(bin, args...)
		cmd.Env = []string{cliEnv + "=1", "PATH=/usr/bin:/bin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		var e bytes.Buffer
		cmd.Stderr = &e
		err := cmd.Run()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 || strings.Count(strings.TrimSpace(e.String()), "\n") != 0 || !strings.Contains(e.String(), "needs root") {
			t.Errorf("%v as nobody: err %v, stderr %q", args, err, e.String())
		}
	}
}

// TestBadInput: usage errors give one line on stderr, status 2, and leave
// no lab behind.
func TestBadInput(t *testing.T) {
	labtest.Privileged(t)
	before := labsNow(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run"}, "name at least one case"},
		{[]string{"run", "host-crsh"}, `did you mean "host-crash"`},
		{[]string{"run", "--count", "0", "all"}, "--count"},
		{[]string{"run", "--count", "99999999", "all"}, "--count"},
		{[]string{"run", "--grace", "-1s", "host-shutdown"}, "--grace"},
		{[]string{"run", "--grace", "soon", "host-shutdown"}, "grace"},
		{[]string{"run", "--nonsense"}, "nonsense"},
		{[]string{"up", "--name", "a/b"}, "lab name"},
		{[]string{"up", "--name", "../x"}, "lab name"},
		{[]string{"up", "--name", "a b"}, "lab name"},
		{[]string{"up", "--name", "muchtoolongname"}, "at most 9"},
		{[]string{"down", "nosuchlab"}, `no lab "nosuchlab"`},
		{[]string{"down"}, "exactly one"},
		{[]string{"exec", "nosuchlab", "client", "--", "true"}, `no lab "nosuchlab"`},
		{[]string{"exec", "x"}, "usage"},
		{[]string{"nosuchverb"}, "nosuchverb"},
	} {
		o := tcplab(t, "", c.args...)
		lines := strings.Split(strings.TrimSpace(o.stderr), "\n")
		if o.code != 2 || !strings.Contains(o.stderr, c.want) || len(lines) != 1 {
			t.Errorf("tcplab %v: status %d, stderr %q; want status 2 and one line containing %q", c.args, o.code, o.stderr, c.want)
		}
	}
	if after := labsNow(t); after != before {
		t.Errorf("labs before %q, after %q", before, after)
	}
}

// TestRunConnectRefused: the first case end to end through the CLI, as text
// and as JSON.
func TestRunConnectRefused(t *testing.T) {
	labtest.Privileged(t)
	o := tcplab(t, "", "run", "connect-refused")
	if o.code != 0 || !strings.Contains(o.stdout, "connect → ECONNREFUSED") || !strings.Contains(o.stdout, "MATCH") {
		t.Fatalf("run connect-refused: %+v", o)
	}
	o = tcplab(t, "", "run", "--json", "connect-refused")
	if o.code != 0 {
		t.Fatalf("run --json: %+v", o)
	}
	var doc struct {
		Kernel  string `json:"kernel"`
		Results []struct {
			Case      string          `json:"case"`
			Verdict   string          `json:"verdict"`
			ElapsedMS *float64        `json:"elapsed_ms"`
			Knobs     json.RawMessage `json:"knobs"`
			Textbook  json.RawMessage `json:"textbook"`
			Expected  json.RawMessage `json:"expected"`
			Events    []struct {
				TMS     *float64 `json:"t_ms"`
				Node    string   `json:"node"`
				Syscall string   `json:"syscall"`
				Result  string   `json:"result"`
				Signal  *string  `json:"signal"`
			} `json:"events"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(o.stdout), &doc); err != nil {
		t.Fatalf("JSON: %v\n%s", err, o.stdout)
	}
	if doc.Kernel == "" || len(doc.Results) != 1 {
		t.Fatalf("JSON document: %+v", doc)
	}
	r := doc.Results[0]
	if r.Case != "connect-refused" || r.Verdict != "match" || r.ElapsedMS == nil || r.Knobs == nil || r.Textbook == nil || r.Expected == nil || len(r.Events) != 1 {
		t.Fatalf("JSON result: %+v", r)
	}
	e := r.Events[0]
	if e.TMS == nil || e.Signal == nil || e.Node != "client" || e.Syscall != "connect" || e.Result != "ECONNREFUSED" {
		t.Fatalf("JSON event: %+v", e)
	}
}

// TestUpExecDown: a lab that stays up, a command inside it with its
// standard streams and exit status, and its removal.
func TestUpExecDown(t *testing.T) {
	labtest.Privileged(t)
	name := "cli" + experiments.NewLabID()[:5]
	o := tcplab(t, "", "up", "--name", name)
	if o.code != 0 || !strings.Contains(o.stdout, topology.NSName(name, "client")) {
		t.Fatalf("up: %+v", o)
	}
	t.Cleanup(func() {
		l, _ := topology.New(name)
		l.Down()
		labtest.NoLeftovers(t, name)
	})
	if o := tcplab(t, "", "up", "--name", name); o.code != 2 || !strings.Contains(o.stderr, "already exists") {
		t.Errorf("second up: %+v", o)
	}
	// Other tests' labs, broken on purpose (the kill tests), may make
	// status exit 2; complaints about this lab may not.
	if o := tcplab(t, "", "status"); (o.code != 0 && (o.code != 2 || strings.Contains(o.stderr, name))) || !strings.Contains(o.stdout, "lab "+name) {
		t.Errorf("status: %+v", o)
	}
	if o := tcplab(t, "hello lab", "exec", name, "server", "--", "cat"); o.code != 0 || o.stdout != "hello lab" {
		t.Errorf("exec cat: %+v", o)
	}
	if o := tcplab(t, "", "exec", name, "client", "--", "sh", "-c", "exit 7"); o.code != 7 {
		t.Errorf("exec exit 7: %+v", o)
	}
	// The command runs in the node's namespace: it sees the node's link.
	o = tcplab(t, "", "exec", name, "client", "--", "cat", "/proc/net/dev")
	if o.code != 0 || !strings.Contains(o.stdout, topology.LinkName(name, "client", "router")) {
		t.Errorf("exec in client: %+v", o)
	}
	// Other tests' broken labs may make clean report an error; what
	// matters here is that it leaves a lab made by up alone.
	if o := tcplab(t, "", "clean"); strings.Contains(o.stdout, name) || !topology.Exists(name) {
		t.Errorf("clean removed a lab made by up: %+v", o)
	}
	if o := tcplab(t, "", "down", name); o.code != 0 {
		t.Fatalf("down: %+v", o)
	}
	labtest.NoLeftovers(t, name)
	if o := tcplab(t, "", "down", name); o.code != 2 {
		t.Errorf("down twice: %+v", o)
	}
}

// TestPcapFiles: --pcap writes one readable file per capture point per run,
// named after the case and the run's lab, and refuses an unusable directory.
func TestPcapFiles(t *testing.T) {
	labtest.Privileged(t)
	dir := t.TempDir()
	o := tcplab(t, "", "run", "connect-refused", "--json", "--pcap", dir)
	if o.code != 0 {
		t.Fatalf("run --pcap: %+v", o)
	}
	var doc struct {
		Results []struct {
			Lab      string `json:"lab"`
			Timeline []struct {
				Kind string `json:"kind"`
			} `json:"timeline"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(o.stdout), &doc); err != nil || len(doc.Results) != 1 {
		t.Fatalf("JSON: %v", err)
	}
	packets := 0
	for _, e := range doc.Results[0].Timeline {
		if e.Kind == "packet" {
			packets++
		}
	}
	if packets == 0 {
		t.Error("the JSON timeline has no packets")
	}
	for _, point := range []string{"client", "router-client", "router-server"} {
		path := filepath.Join(dir, "connect-refused-"+doc.Results[0].Lab+"-"+point+".pcap")
		pk, err := capture.ReadPcap(path)
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		var rst bool
		for _, p := range pk {
			d := capture.Decode(p.Data)
			rst = rst || (d.Proto == "tcp" && d.Src == topology.ServerIP.String() && d.Flags == capture.RST|capture.ACK)
		}
		if !rst {
			t.Errorf("%s: no RST,ACK from the server among %d frames", path, len(pk))
		}
	}
	file := filepath.Join(dir, "not-a-dir")
	os.WriteFile(file, nil, 0o644)
	if o := tcplab(t, "", "run", "connect-refused", "--pcap", file); o.code != 2 || !strings.Contains(o.stderr, "pcap directory") {
		t.Errorf("--pcap on a file: %+v", o)
	}
}
