package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/tcplab/tcplab/experiments"
	"github.com/tcplab/tcplab/impair"
	"github.com/tcplab/tcplab/topology"
	"github.com/urfave/cli/v2"
)

// Shell completion. Every script asks tcplab itself what completes a
// partial command line (the hidden verb __complete), so verbs, flags, case
// ids, fault names and lab names come from the one place that defines them.
//
// The CLI library's own protocol (EnableBashCompletion, a trailing
// --generate-bash-completion) does not fit: run() moves a verb's flags
// before its arguments, so after `tcplab run host-crash <TAB>` the marker
// is no longer last and the verb rejects it as an unknown flag; and the
// library's default completer reads os.Args and knows no arguments.
// Fish's script does come from the library (App.ToFishCompletion: verbs
// and flags with their usage), with the arguments added from __complete.

const completeVerb = "__complete"

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script for bash, zsh or fish",
		ArgsUsage: "bash | zsh | fish",
		Description: "Prints the script on stdout. To install it:\n" +
			"  bash  tcplab completion bash > /etc/bash_completion.d/tcplab\n" +
			"        (or add `source <(tcplab completion bash)` to ~/.bashrc)\n" +
			"  zsh   tcplab completion zsh > \"${fpath[1]}/_tcplab\", then start a new shell\n" +
			"        (or add `source <(tcplab completion zsh)` to ~/.zshrc, after compinit)\n" +
			"  fish  tcplab completion fish > ~/.config/fish/completions/tcplab.fish\n" +
			"Verbs, flags, case ids, fault names and node names complete; lab names too\n" +
			"when the shell runs as root (they are read from the lab state).",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("usage: tcplab completion bash|zsh|fish")
			}
			var script string
			switch sh := c.Args().First(); sh {
			case "bash":
				script = bashScript
			case "zsh":
				script = zshScript(c.App)
			case "fish":
				s, err := fishScript(newApp()) // not c.App: running a verb gives it a help subcommand
				if err != nil {
					return err
				}
				script = s
			default:
				return usagef("unknown shell %q; give bash, zsh or fish", sh)
			}
			_, err := fmt.Fprint(c.App.Writer, script)
			return err
		},
	}
}

// completeCommand is what the scripts call: `tcplab __complete -- WORD...`
// with the words after `tcplab` up to and including the one being
// completed (possibly empty). It prints the candidates, one a line; none
// lets the shell fall back to file names.
func completeCommand() *cli.Command {
	return &cli.Command{
		Name:            completeVerb,
		Usage:           "print the completions of a partial command line (for the completion scripts)",
		Hidden:          true,
		HideHelp:        true,
		SkipFlagParsing: true,
		Action: func(c *cli.Context) error {
			words := c.Args().Slice()
			if len(words) > 0 && words[0] == "--" {
				words = words[1:]
			}
			for _, s := range completions(c.App, words) {
				fmt.Fprintln(c.App.Writer, s)
			}
			return nil
		},
	}
}

// completions are the candidates for the last of words, given the ones
// before it.
func completions(app *cli.App, words []string) []string {
	if len(words) == 0 {
		words = []string{""}
	}
	cur, prior := words[len(words)-1], words[:len(words)-1]
	verb := -1
	for i, w := range prior {
		if !strings.HasPrefix(w, "-") {
			verb = i
			break
		}
	}
	if verb < 0 {
		if strings.HasPrefix(cur, "-") {
			return withPrefix(cur, []string{"--help", "--version"})
		}
		var verbs []string
		for _, c := range app.VisibleCommands() {
			verbs = append(verbs, c.Name)
		}
		return withPrefix(cur, verbs)
	}
	cmd := app.Command(prior[verb])
	if cmd == nil || cmd.Hidden {
		return nil
	}
	rest := prior[verb+1:]
	if cur == "=" || (len(rest) > 0 && rest[len(rest)-1] == "=") {
		return nil // bash splits --flag=value at the "="
	}
	n := 0 // arguments before cur
	for i := 0; i < len(rest); i++ {
		w := rest[i]
		switch {
		case w == "--":
			return nil // a command line for exec: the shell's own completion
		case strings.HasPrefix(w, "-") && w != "-":
			if takesValue(cmd, w) {
				if i == len(rest)-1 {
					return withPrefix(cur, flagValues[strings.TrimLeft(w, "-")])
				}
				i++
			}
		default:
			n++
		}
	}
	if strings.HasPrefix(cur, "-") {
		flags := []string{"--help"}
		for _, f := range cmd.Flags {
			for _, name := range f.Names() {
				if len(name) == 1 {
					flags = append(flags, "-"+name)
				} else {
					flags = append(flags, "--"+name)
				}
			}
		}
		return withPrefix(cur, flags)
	}
	return withPrefix(cur, argCandidates(cmd.ArgsUsage, n))
}

// flagValues are the values of the flags that take one of a few.
var flagValues = map[string][]string{"family": {"4", "6", "both"}}

// takesValue tells whether the flag word w (-x, --name, --name=v) of cmd
// consumes the next word.
func takesValue(cmd *cli.Command, w string) bool {
	if strings.Contains(w, "=") {
		return false
	}
	name := strings.TrimLeft(w, "-")
	for _, f := range cmd.Flags {
		for _, n := range f.Names() {
			if n == name {
				_, isBool := f.(*cli.BoolFlag)
				return !isBool
			}
		}
	}
	return false
}

// argKind is the placeholder (CASE, NAME, FAULT, NODE...) the verb's usage
// line gives its n-th argument: `CASE... | all`, `NAME FAULT | NAME --clear`,
// `NAME NODE -- CMD`. The last placeholder repeats when it ends in "...".
func argKind(usage string, n int) string {
	first, _, _ := strings.Cut(usage, "|")
	var kinds []string
	repeat := false
	for _, t := range strings.Fields(first) {
		if t == "--" {
			break
		}
		t = strings.Trim(t, "[]")
		t, repeat = strings.CutSuffix(t, "...")
		kinds = append(kinds, t)
	}
	switch {
	case n < len(kinds):
		return kinds[n]
	case repeat && len(kinds) > 0:
		return kinds[len(kinds)-1]
	}
	return ""
}

// argCandidates are the values of the n-th argument of a verb with that
// usage line: a placeholder's values, or the words of a usage that is a
// choice of words (`bash | zsh | fish`).
func argCandidates(usage string, n int) []string {
	kind := argKind(usage, n)
	if kind != "" && kind == strings.ToLower(kind) {
		var words []string
		for _, alt := range strings.Split(usage, "|") {
			if f := strings.Fields(alt); len(f) == 1 && f[0] == strings.ToLower(f[0]) {
				words = append(words, f[0])
			}
		}
		return words
	}
	switch kind {
	case "CASE":
		return append(experiments.IDs(), "all", "first", "second")
	case "FAULT":
		return impair.Names()
	case "NODE":
		return []string{topology.Client, topology.Router, topology.Server}
	case "NAME":
		if os.Geteuid() != 0 {
			return nil // the lab state is root's
		}
		ids, _ := topology.Labs()
		return ids
	}
	return nil
}

func withPrefix(prefix string, words []string) []string {
	var out []string
	for _, w := range words {
		if strings.HasPrefix(w, prefix) {
			out = append(out, w)
		}
	}
	return out
}

// bashScript completes through __complete; with no candidates bash falls
// back to file names (exec's command, --pcap DIR).
const bashScript = `# bash completion for tcplab; install: tcplab completion --help
_tcplab() {
    local IFS=$'\n'
    local cur=${COMP_WORDS[COMP_CWORD]}
    COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" ` + completeVerb + ` -- "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)" -- "$cur"))
}
complete -o default -F _tcplab tcplab
`

// zshScript offers the verbs with their usage, and completes the rest
// through __complete. It works both from $fpath (#compdef) and sourced.
func zshScript(app *cli.App) string {
	var verbs strings.Builder
	for _, c := range app.VisibleCommands() {
		fmt.Fprintf(&verbs, "    '%s:%s'\n", c.Name, strings.ReplaceAll(c.Usage, "'", `'\''`))
	}
	return `#compdef tcplab
# zsh completion for tcplab; install: tcplab completion --help
_tcplab() {
  local -a verbs opts
  verbs=(
` + verbs.String() + `  )
  if (( CURRENT == 2 )) && [[ $PREFIX != -* ]]; then
    _describe -t commands 'tcplab verb' verbs
    return
  fi
  opts=("${(@f)$(${words[1]} ` + completeVerb + ` -- "${(@)words[2,CURRENT]}" 2>/dev/null)}")
  if [[ -n ${opts[1]} ]]; then
    compadd -a opts
  else
    _files
  fi
}
if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
  _tcplab "$@"
else
  compdef _tcplab tcplab
fi
`
}

var oneLetterLong = regexp.MustCompile(` -l (\w) `)

// fishScript is the library's (verbs and flags, with their usage) plus the
// arguments from __complete; files only after exec's NAME NODE --.
func fishScript(app *cli.App) (string, error) {
	lib, err := app.ToFishCompletion()
	if err != nil {
		return "", fmt.Errorf("fish completion: %w", err)
	}
	// The library makes a one-letter flag (-6) a long one (--6).
	lib = oneLetterLong.ReplaceAllString(lib, " -s $1 ")
	// Fish completes a flag's value from the flag's own line only.
	var values strings.Builder
	for _, c := range app.VisibleCommands() {
		for _, f := range c.Flags {
			if v := flagValues[f.Names()[0]]; v != nil {
				fmt.Fprintf(&values, "complete -c tcplab -n '__fish_seen_subcommand_from %s' -l %s -x -a '%s'\n", c.Name, f.Names()[0], strings.Join(v, " "))
			}
		}
	}
	return lib + values.String() + `
function __fish_tcplab_args --description 'Arguments of tcplab verbs'
    set -l tok (commandline -ct)
    string match -q -- '-*' $tok; and return
    set -l words (commandline -opc)
    $words[1] ` + completeVerb + ` -- $words[2..-1] $tok 2>/dev/null
end
complete -c tcplab -n '__fish_tcplab_no_subcommand' -f
complete -c tcplab -n 'not __fish_tcplab_no_subcommand; and not contains -- -- (commandline -opc)' -f -a '(__fish_tcplab_args)'
`, nil
}
