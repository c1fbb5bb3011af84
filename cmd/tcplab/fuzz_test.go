package main

import (
	"slices"
	"strings"
	"testing"
)

// FuzzFlagsFirst: flagsFirst reorders the arguments of a verb, which come
// straight from the user. Whatever they are, it keeps every argument,
// changes nothing after "--", and keeps the case names in their order.
func FuzzFlagsFirst(f *testing.F) {
	for _, s := range []string{
		"all --parallel 4", "--count 3 host-crash all", "all --count", "-- --count 3",
		"a -b --c=d -- e --f", "--json --grace 1s host-shutdown --pcap", "- -- -", "---x =y",
		"host-crash --parallel=2 --kernel-defaults connect-refused",
	} {
		f.Add(s)
	}
	cmd := runCommand()
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Split(line, " ")
		got := flagsFirst(cmd, slices.Clone(args))
		a, g := slices.Clone(args), slices.Clone(got)
		slices.Sort(a)
		slices.Sort(g)
		if !slices.Equal(a, g) {
			t.Fatalf("flagsFirst(%q) = %q: not the same arguments", args, got)
		}
		if i := slices.Index(args, "--"); i >= 0 {
			tail := args[i:]
			if !slices.Equal(got[len(got)-len(tail):], tail) {
				t.Fatalf("flagsFirst(%q) = %q: the arguments after -- moved", args, got)
			}
		}
		plain := func(s []string) []string {
			var out []string
			for i, x := range s {
				if x == "--" {
					break
				}
				if !strings.HasPrefix(x, "-") && (i == 0 || !strings.HasPrefix(s[i-1], "-")) {
					out = append(out, x)
				}
			}
			return out
		}
		// Names that follow no flag keep their order.
		if p, q := plain(args), plain(got); len(p) > 0 && len(q) > 0 && !isSubsequence(p, got) {
			t.Fatalf("flagsFirst(%q) = %q: case names reordered", args, got)
		}
	})
}

func isSubsequence(sub, s []string) bool {
	i := 0
	for _, x := range s {
		if i < len(sub) && x == sub[i] {
			i++
		}
	}
	return i == len(sub)
}
