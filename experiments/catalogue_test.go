package experiments

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestCatalogueInStep: the README's case table and docs/cases.md follow
// the registry: the same cases, in the catalogue's order, the README with
// each case's one-line summary. Adding a case without its docs fails here.
func TestCatalogueInStep(t *testing.T) {
	var ids []string
	for _, c := range All() {
		ids = append(ids, c.ID)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z0-9-]+)` \\| (.*) \\|$")
	var rows []string
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		rows = append(rows, m[1])
		if c, err := Lookup(m[1]); err == nil && m[2] != c.Summary {
			t.Errorf("README: %s: summary %q, the case says %q", m[1], m[2], c.Summary)
		}
	}
	if strings.Join(rows, " ") != strings.Join(ids, " ") {
		t.Errorf("README's case table lists\n %v\nthe registry has\n %v", rows, ids)
	}
	doc, err := os.ReadFile("../docs/cases.md")
	if err != nil {
		t.Fatal(err)
	}
	var sections []string
	for _, m := range regexp.MustCompile(`(?m)^## ([a-z0-9-]+)$`).FindAllStringSubmatch(string(doc), -1) {
		sections = append(sections, m[1])
	}
	if strings.Join(sections, " ") != strings.Join(ids, " ") {
		t.Errorf("docs/cases.md has sections\n %v\nthe registry has\n %v", sections, ids)
	}
}
