package experiments

import (
	"strings"
	"testing"
)

// FuzzLookup: a case name comes straight from the command line. Lookup
// finds exactly the registered ones, and answers anything else with one
// line, never a panic.
func FuzzLookup(f *testing.F) {
	for _, s := range []string{"host-crash", "host-crsh", "", "all", "HOST-CRASH", "host-crash\n", "../x", "\x00", strings.Repeat("x", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		c, err := Lookup(name)
		if err == nil {
			if c.ID != name {
				t.Fatalf("Lookup(%q) = case %q", name, c.ID)
			}
			return
		}
		if strings.Contains(err.Error(), "\n") {
			t.Fatalf("Lookup(%q): a multi-line error %q", name, err)
		}
	})
}
