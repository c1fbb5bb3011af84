package topology_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tcplab/tcplab/topology"
)

// FuzzParseNSName: whatever a name under /run/netns is, ParseNSName either
// rejects it or returns a valid id and role that build that very name.
func FuzzParseNSName(f *testing.F) {
	for _, s := range []string{
		"tcplab-abc-client", "tcplab-a-b-server", "tcplab--router", "tcplab-abc-switch",
		"tcplab-../x-client", "tcplab-a/b-client", "tcplab-123456789-router", "tcplab-1234567890-router",
		"tcplab-abc-client-", "tcplab-", "tcplab-client", "other-abc-client", "tcplab-ABC-client", "tcplab-a b-server",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		id, role, ok := topology.ParseNSName(name)
		if !ok {
			if id != "" || role != "" {
				t.Fatalf("ParseNSName(%q) rejected it but returned %q, %q", name, id, role)
			}
			return
		}
		if err := topology.ValidateID(id); err != nil {
			t.Fatalf("ParseNSName(%q) = id %q: %v", name, id, err)
		}
		if role != topology.Client && role != topology.Router && role != topology.Server {
			t.Fatalf("ParseNSName(%q) = role %q", name, role)
		}
		if got := topology.NSName(id, role); got != name {
			t.Fatalf("ParseNSName(%q) = %q, %q, which names %q", name, id, role, got)
		}
	})
}

// FuzzParseStatStart: a /proc/PID/stat line carries a command name the
// process chose, spaces and parentheses included; the start time is read
// from the right field whatever the name, and nothing panics.
func FuzzParseStatStart(f *testing.F) {
	const rest = " S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 20 21\n"
	for _, comm := range []string{"tcplab", "a b", "x) 9 9 (y", ")", "((", "", ") S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 7 "} {
		f.Add(comm)
	}
	f.Fuzz(func(t *testing.T, comm string) {
		line := "1234 (" + comm + ")" + rest
		got, err := topology.ParseStatStart([]byte(line))
		if err != nil || got != 424242 {
			t.Fatalf("ParseStatStart(%q) = %d, %v; want 424242", line, got, err)
		}
		// Any text at all: an error or a number, never a panic.
		topology.ParseStatStart([]byte(comm))
	})
}

// FuzzStateRoundTrip: every valid state survives writing and reading, and
// a parsed state always names a lab whose names are safe to build.
func FuzzStateRoundTrip(f *testing.F) {
	f.Add("abc", "up", 1, uint64(2), true)
	f.Add("a-1", "run", 0, uint64(0), false)
	f.Add("../x", "up", 1, uint64(1), true)
	f.Add("123456789", "run", 4194304, uint64(1<<63), false)
	f.Fuzz(func(t *testing.T, id, kind string, pid int, start uint64, ready bool) {
		s := topology.State{ID: id, Kind: kind, PID: pid, PIDStart: start, Created: time.Unix(1700000000, 5).UTC(), Ready: ready}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := topology.ParseState(b)
		valid := topology.ValidateID(id) == nil && (kind == topology.KindRun || kind == topology.KindUp) && pid >= 0 && pid <= 1<<22
		if valid != (err == nil) {
			t.Fatalf("ParseState(%s) = %v; valid %v", b, err, valid)
		}
		if err == nil && got != s {
			t.Fatalf("ParseState(%s) = %+v, want %+v", b, got, s)
		}
		if err == nil && strings.ContainsAny(topology.NSName(got.ID, topology.Client), "/ \x00") {
			t.Fatalf("state %+v names an unsafe namespace", got)
		}
	})
}
