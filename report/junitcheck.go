package report

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// CheckJUnit checks, in Go alone, that data is JUnit XML of the strict Ant
// form JUnit writes (see testdata/junit.xsd, which xmllint checks in the
// tests): the elements, their order, the required attributes and their
// formats, and that each suite's counts agree with its testcases. It
// returns the number of testcases.
func CheckJUnit(data []byte) (int, error) {
	root, err := parseTree(data)
	if err != nil {
		return 0, err
	}
	if root.name != "testsuites" {
		return 0, fmt.Errorf("root element <%s>, want <testsuites>", root.name)
	}
	if len(root.attrs) > 0 {
		return 0, fmt.Errorf("<testsuites> has attributes %v: the Ant format allows none", keys(root.attrs))
	}
	total := 0
	for i, s := range root.kids {
		if s.name != "testsuite" {
			return 0, fmt.Errorf("<testsuites> holds <%s>, want only <testsuite>", s.name)
		}
		n, err := checkSuite(s)
		if err != nil {
			return 0, fmt.Errorf("testsuite %d: %w", i+1, err)
		}
		total += n
	}
	return total, nil
}

var (
	junitTimestamp = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$`)
	junitDecimal   = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$`)
)

func checkSuite(s *node) (int, error) {
	if err := s.only("name", "package", "id", "timestamp", "hostname", "tests", "failures", "errors", "time"); err != nil {
		return 0, err
	}
	for _, a := range []string{"name", "package", "hostname"} {
		if strings.TrimSpace(s.attrs[a]) == "" {
			return 0, fmt.Errorf("<testsuite> lacks %s", a)
		}
	}
	if !junitTimestamp.MatchString(s.attrs["timestamp"]) {
		return 0, fmt.Errorf("<testsuite> timestamp %q: want YYYY-MM-DDThh:mm:ss, no zone", s.attrs["timestamp"])
	}
	if !junitDecimal.MatchString(s.attrs["time"]) {
		return 0, fmt.Errorf("<testsuite> time %q is not a decimal", s.attrs["time"])
	}
	counts := map[string]int{}
	for _, a := range []string{"id", "tests", "failures", "errors"} {
		v, err := strconv.Atoi(s.attrs[a])
		if err != nil {
			return 0, fmt.Errorf("<testsuite> %s %q is not an integer", a, s.attrs[a])
		}
		counts[a] = v
	}
	// properties, testcase*, system-out, system-err: in that order.
	k := s.kids
	if len(k) < 3 || k[0].name != "properties" || k[len(k)-2].name != "system-out" || k[len(k)-1].name != "system-err" {
		return 0, fmt.Errorf("<testsuite> children %v: want properties, testcase..., system-out, system-err", names(k))
	}
	for _, p := range k[0].kids {
		if p.name != "property" {
			return 0, fmt.Errorf("<properties> holds <%s>", p.name)
		}
		if err := p.only("name", "value"); err != nil {
			return 0, err
		}
		if _, ok := p.attrs["value"]; !ok || strings.TrimSpace(p.attrs["name"]) == "" {
			return 0, errors.New("a <property> lacks its name or value")
		}
	}
	failures, errs := 0, 0
	cases := k[1 : len(k)-2]
	for _, c := range cases {
		if c.name != "testcase" {
			return 0, fmt.Errorf("<testsuite> holds <%s> among its testcases", c.name)
		}
		if err := c.only("name", "classname", "time"); err != nil {
			return 0, err
		}
		if c.attrs["name"] == "" || c.attrs["classname"] == "" {
			return 0, errors.New("a <testcase> lacks its name or classname")
		}
		if !junitDecimal.MatchString(c.attrs["time"]) {
			return 0, fmt.Errorf("testcase %q: time %q is not a decimal", c.attrs["name"], c.attrs["time"])
		}
		if len(c.kids) > 1 {
			return 0, fmt.Errorf("testcase %q holds %v: at most one failure or error", c.attrs["name"], names(c.kids))
		}
		for _, f := range c.kids {
			switch f.name {
			case "failure":
				failures++
			case "error":
				errs++
			default:
				return 0, fmt.Errorf("testcase %q holds <%s>", c.attrs["name"], f.name)
			}
			if err := f.only("message", "type"); err != nil {
				return 0, err
			}
			if _, ok := f.attrs["type"]; !ok {
				return 0, fmt.Errorf("testcase %q: <%s> lacks its type", c.attrs["name"], f.name)
			}
		}
	}
	for _, x := range []struct {
		attr string
		n    int
	}{{"tests", len(cases)}, {"failures", failures}, {"errors", errs}} {
		if counts[x.attr] != x.n {
			return 0, fmt.Errorf("<testsuite> says %s=%d, it holds %d", x.attr, counts[x.attr], x.n)
		}
	}
	return len(cases), nil
}

// node is an element of a parsed XML document.
type node struct {
	name  string
	attrs map[string]string
	kids  []*node
}

// only refuses attributes other than those given.
func (n *node) only(allowed ...string) error {
	for a := range n.attrs {
		ok := false
		for _, b := range allowed {
			ok = ok || a == b
		}
		if !ok {
			return fmt.Errorf("<%s> has attribute %s, which the format does not allow", n.name, a)
		}
	}
	return nil
}

func parseTree(data []byte) (*node, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	var stack []*node
	var root *node
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("junit XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &node{name: t.Name.Local, attrs: map[string]string{}}
			for _, a := range t.Attr {
				n.attrs[a.Name.Local] = a.Value
			}
			if len(stack) == 0 {
				if root != nil {
					return nil, errors.New("junit XML: more than one root element")
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.kids = append(p.kids, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		}
	}
	if root == nil {
		return nil, errors.New("junit XML: no root element")
	}
	return root, nil
}

func names(ns []*node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.name)
	}
	return out
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
