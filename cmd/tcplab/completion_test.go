package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/experiments"
	"github.com/tcplab/tcplab/internal/labtest"
	"github.com/tcplab/tcplab/topology"
)

// visibleVerbs are the verbs a user sees, in the app's order.
func visibleVerbs() []string {
	var v []string
	for _, c := range newApp().Commands {
		if !c.Hidden {
			v = append(v, c.Name)
		}
	}
	return v
}

// bashComplete sources the bash script and completes the command line
// words after the command (the last one being completed), as bash does on
// TAB; the command word is this test binary.
func bashComplete(t *testing.T, script string, words ...string) []string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	prog := `source "$1"; shift
COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
complete -p tcplab >/dev/null || exit 3
_tcplab
printf '%s\n' "${COMPREPLY[@]}"`
	cmd := exec.Command("bash", append([]string{"-c", prog, "bash", script, exe}, words...)...)
	cmd.Env = append(os.Environ(), cliEnv+"=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bash completion of %q: %v", words, err)
	}
	var got []string
	for _, l := range strings.Split(string(out), "\n") {
		if l != "" {
			got = append(got, l)
		}
	}
	return got
}

func TestCompletionBash(t *testing.T) {
	o := tcplab(t, "", "completion", "bash")
	if o.code != 0 || o.stderr != "" {
		t.Fatalf("completion bash: %+v", o)
	}
	script := filepath.Join(t.TempDir(), "tcplab.bash")
	if err := os.WriteFile(script, []byte(o.stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("bash", "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	ids := experiments.IDs()
	for _, c := range []struct {
		words []string
		want  []string
	}{
		{[]string{""}, visibleVerbs()},
		{[]string{"ex"}, []string{"explain", "exec"}},
		{[]string{"run", "host-c"}, []string{"host-crash"}},
		{[]string{"run", "host-crash", ""}, append(ids, "all", "first", "second")},
		{[]string{"run", "--json", "host-r"}, []string{"host-reboot"}},
		{[]string{"run", "--count", "3", "sig"}, []string{"sigpipe"}},
		{[]string{"run", "--family", ""}, []string{"4", "6", "both"}},
		{[]string{"run", "--kernel-d"}, []string{"--kernel-defaults"}},
		{[]string{"explain", "connect-r"}, []string{"connect-refused"}},
		{[]string{"explain", "a"}, []string{"accept-aborted", "abortive-close", "all"}},
		{[]string{"fault", "demo", "crash"}, []string{"crash", "crash-reported"}},
		{[]string{"fault", "--p"}, []string{"--port"}},
		{[]string{"exec", "demo", "r"}, []string{"router"}},
		{[]string{"exec", "demo", "client", "--", "xyzzy-no-such-command"}, nil},
		{[]string{"matrix", "--"}, []string{"--help", "--json", "--family", "--parallel", "--junit"}},
		{[]string{"completion", ""}, []string{"bash", "zsh", "fish"}},
		{[]string{"nosuchverb", ""}, nil},
		{[]string{"--v"}, []string{"--version"}},
	} {
		got := bashComplete(t, script, c.words...)
		if !slices.Equal(got, c.want) {
			t.Errorf("tcplab %s<TAB>: got %q, want %q", strings.Join(c.words, " "), got, c.want)
		}
	}
}

// TestCompletionEveryFlag: every flag of every verb completes.
func TestCompletionEveryFlag(t *testing.T) {
	app := newApp()
	for _, cmd := range app.Commands {
		if cmd.Hidden {
			continue
		}
		got := completions(app, []string{cmd.Name, "-"})
		for _, f := range cmd.Flags {
			for _, n := range f.Names() {
				want := "--" + n
				if len(n) == 1 {
					want = "-" + n
				}
				if !slices.Contains(got, want) {
					t.Errorf("tcplab %s -<TAB> does not offer %s: %q", cmd.Name, want, got)
				}
			}
		}
	}
}

// TestCompletionLabNames: lab names complete for root, and not for others.
func TestCompletionLabNames(t *testing.T) {
	labtest.Privileged(t)
	name := "cmp" + experiments.NewLabID()[:5]
	if o := tcplab(t, "", "up", "--name", name); o.code != 0 {
		t.Fatalf("up: %+v", o)
	}
	t.Cleanup(func() {
		l, _ := topology.New(name)
		l.Down()
		labtest.NoLeftovers(t, name)
	})
	for _, words := range [][]string{{"down", name[:4]}, {"exec", name[:4]}, {"fault", name[:4]}} {
		o := tcplab(t, "", append([]string{"__complete", "--"}, words...)...)
		if o.code != 0 || !slices.Contains(strings.Fields(o.stdout), name) {
			t.Errorf("tcplab %s<TAB> as root: %+v; want %s among them", strings.Join(words, " "), o, name)
		}
	}
	if o := tcplabAsNobody(t, "__complete", "--", "down", ""); o.code != 0 || o.stdout != "" {
		t.Errorf("tcplab down <TAB> as nobody: %+v; want nothing", o)
	}
}

// TestCompletionZshFish: the scripts name every verb; where the shell is
// installed, they pass its syntax check and complete a case id.
func TestCompletionZshFish(t *testing.T) {
	for _, sh := range []struct{ name, check string }{{"zsh", "-n"}, {"fish", "--no-execute"}} {
		o := tcplab(t, "", "completion", sh.name)
		if o.code != 0 || strings.TrimSpace(o.stdout) == "" {
			t.Errorf("completion %s: %+v", sh.name, o)
			continue
		}
		for _, v := range visibleVerbs() {
			if !strings.Contains(o.stdout, v) {
				t.Errorf("the %s script does not mention %s", sh.name, v)
			}
		}
		if !strings.Contains(o.stdout, completeVerb) {
			t.Errorf("the %s script does not complete arguments through %s", sh.name, completeVerb)
		}
		bin, err := exec.LookPath(sh.name)
		if err != nil {
			t.Logf("%s is not installed: its syntax check is not run", sh.name)
			continue
		}
		script := filepath.Join(t.TempDir(), "tcplab."+sh.name)
		if err := os.WriteFile(script, []byte(o.stdout), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, sh.check, script).CombinedOutput(); err != nil {
			t.Errorf("%s %s: %v\n%s", sh.name, sh.check, err, out)
			continue
		}
		// Complete `tcplab run host-c`: fish for real, zsh with its
		// completion builtins replaced by functions that print.
		prog := map[string]string{
			"fish": `source $argv[1]; complete -C'tcplab run host-c'`,
			"zsh": `compdef() { }; compadd() { [[ $1 == -a ]] && print -l -- ${(P)2} }; source $1
words=(tcplab run host-c); CURRENT=3; PREFIX=host-c; _tcplab`,
		}[sh.name]
		cmd := exec.Command(bin, "-c", prog, script)
		if sh.name == "zsh" {
			cmd.Args = []string{bin, "-f", "-c", prog, "zsh", script}
		}
		cmd.Env = append(os.Environ(), cliEnv+"=1", "PATH="+onPath(t)+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "host-crash" {
			t.Errorf("%s: tcplab run host-c<TAB>: %v, %q; want host-crash", sh.name, err, out)
		}
	}
}

// onPath is a directory where `tcplab` is this test binary.
func onPath(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Symlink(exe, filepath.Join(dir, "tcplab")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCompletionBadShell(t *testing.T) {
	for _, args := range [][]string{{"completion", "tcsh"}, {"completion"}, {"completion", "bash", "zsh"}} {
		o := tcplab(t, "", args...)
		if o.code != 2 || o.stdout != "" || strings.Count(strings.TrimSpace(o.stderr), "\n") != 0 || !strings.Contains(o.stderr, "bash") {
			t.Errorf("tcplab %v: %+v; want status 2 and one line naming the shells", args, o)
		}
	}
}
