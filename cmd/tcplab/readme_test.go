package main

import (
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// readmeCommands parses the command summary of the README: the first code
// block under "## Commands", where a line `tcplab VERB ...` starts a verb,
// an indented line starting with "-" documents flags (`--name VALUE`,
// several separated by ", ", before the description), and any other
// indented line continues a description.
func readmeCommands(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Commands\n")
	if !ok {
		t.Fatal(`README.md: no section "## Commands"`)
	}
	_, block, ok := strings.Cut(section, "\n```\n")
	if !ok {
		t.Fatal("README.md: no code block in the Commands section")
	}
	block, _, _ = strings.Cut(block, "\n```")
	verbs := map[string][]string{}
	verb := ""
	flagWord := regexp.MustCompile(`^--?([A-Za-z0-9][A-Za-z0-9-]*)$`)
	for i, line := range strings.Split(block, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
		case strings.HasPrefix(line, "tcplab "):
			verb = strings.Fields(line)[1]
			if _, dup := verbs[verb]; dup {
				t.Errorf("README.md command summary: %s appears twice", verb)
			}
			verbs[verb] = []string{}
		case verb == "" || line == trimmed:
			t.Errorf("README.md command summary, line %d: want `tcplab VERB ...` or an indented line: %q", i+1, line)
		case strings.HasPrefix(trimmed, "-"):
			spec, _, _ := strings.Cut(trimmed, "  ") // the flags, before the description
			for _, f := range strings.Split(spec, ", ") {
				m := flagWord.FindStringSubmatch(strings.Fields(f)[0])
				if m == nil {
					t.Errorf("README.md command summary, line %d: %q is not a flag", i+1, f)
					continue
				}
				verbs[verb] = append(verbs[verb], m[1])
			}
		}
	}
	return verbs
}

// TestReadmeCommands: the README's command summary documents every verb
// with exactly the flags it has.
func TestReadmeCommands(t *testing.T) {
	doc := readmeCommands(t)
	app := newApp()
	for _, cmd := range app.Commands {
		if cmd.Hidden {
			if _, ok := doc[cmd.Name]; ok {
				t.Errorf("README.md documents %s, a hidden verb", cmd.Name)
			}
			continue
		}
		documented, ok := doc[cmd.Name]
		if !ok {
			t.Errorf("README.md's command summary lacks `tcplab %s`", cmd.Name)
			continue
		}
		var defined []string
		for _, f := range cmd.Flags {
			defined = append(defined, f.Names()...)
		}
		if missing := minus(defined, documented); len(missing) > 0 {
			t.Errorf("README.md's command summary: tcplab %s lacks %s", cmd.Name, flagList(missing))
		}
		if extra := minus(documented, defined); len(extra) > 0 {
			t.Errorf("README.md's command summary: tcplab %s has no flag %s", cmd.Name, flagList(extra))
		}
	}
	for verb := range doc {
		if app.Command(verb) == nil {
			t.Errorf("README.md's command summary documents %s, which is not a verb", verb)
		}
	}
}

// TestHelpCoversEveryVerb: every verb has --help, which names each of its
// flags.
func TestHelpCoversEveryVerb(t *testing.T) {
	for _, cmd := range newApp().Commands {
		if cmd.Hidden {
			continue
		}
		o := tcplab(t, "", cmd.Name, "--help")
		if o.code != 0 || !strings.Contains(o.stdout, "USAGE") {
			t.Errorf("%s --help: %+v", cmd.Name, o)
			continue
		}
		for _, f := range cmd.Flags {
			for _, n := range f.Names() {
				if !regexp.MustCompile(`(^|[\s,])` + regexp.QuoteMeta(dashed(n)) + `\b`).MatchString(o.stdout) {
					t.Errorf("%s --help does not mention %s", cmd.Name, dashed(n))
				}
			}
		}
	}
}

// minus is what of a is not in b, sorted.
func minus(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

func flagList(names []string) string {
	var d []string
	for _, n := range names {
		d = append(d, dashed(n))
	}
	return strings.Join(d, ", ")
}

// dashed is a flag name as it is typed: -6, --json.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}
