package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/internal/labtest"
)

// Real third-party programs where the server ends the connection itself:
// a python3 server that closes with SO_LINGER {on, 0}, or with the request
// unread, and curl against it.

// endsServer accepts one connection, waits for the request, and then runs
// the python statements in then (c is the connection).
func endsServer(then string) string {
	return `exec python3 -c '
import os, select, socket, struct
addr = os.environ["TCPLAB_SERVER_ADDR"]
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, int(os.environ["TCPLAB_SERVER_PORT"])))
s.listen()
c, _ = s.accept()
select.select([c], [], [])
` + then + `
'`
}

// curlURL is curl against the server, IPv6 addresses bracketed.
const curlURL = `curl -sS -g "http://$(case $TCPLAB_SERVER_ADDR in *:*) echo "[$TCPLAB_SERVER_ADDR]";; *) echo "$TCPLAB_SERVER_ADDR";; esac):$TCPLAB_SERVER_PORT/"`

type endsDoc struct {
	Results []struct {
		Verdict       string `json:"verdict"`
		Error         string `json:"error"`
		ClientProgram *struct {
			Exit       *int     `json:"exit"`
			StderrTail []string `json:"stderr_tail"`
		} `json:"client_program"`
		Timeline []struct {
			Packet *struct {
				Point string `json:"point"`
				Proto string `json:"proto"`
				Src   string `json:"src"`
				Flags string `json:"flags"`
				Len   int    `json:"len"`
			} `json:"packet"`
		} `json:"timeline"`
	} `json:"results"`
}

// serverSegments runs the case and returns what the client program did and
// the server's segments as the router's server side saw them: "data",
// "FIN" or "RST", in order.
func serverSegments(t *testing.T, family string, args ...string) (exit int, stderr string, segs []string) {
	t.Helper()
	o := tcplab(t, "", append([]string{"run", "--json", "--family", family}, args...)...)
	if o.code != 0 {
		t.Fatalf("tcplab run %v: status %d\n%s\n%s", args, o.code, o.stderr, o.stdout)
	}
	var d endsDoc
	if err := json.Unmarshal([]byte(o.stdout), &d); err != nil || len(d.Results) != 1 {
		t.Fatalf("JSON: %v\n%s", err, o.stdout)
	}
	r := d.Results[0]
	if r.Verdict != "observed" || r.ClientProgram == nil || r.ClientProgram.Exit == nil {
		t.Fatalf("result: verdict %s, error %q, client %+v", r.Verdict, r.Error, r.ClientProgram)
	}
	server := "203.0.113.2"
	if family == "6" {
		server = "2001:db8:5::2"
	}
	for _, e := range r.Timeline {
		p := e.Packet
		if p == nil || p.Point != "router-server" || p.Proto != "tcp" || p.Src != server {
			continue
		}
		switch {
		case strings.Contains(p.Flags, "RST"):
			segs = append(segs, "RST")
		case strings.Contains(p.Flags, "FIN"):
			segs = append(segs, "FIN")
		case p.Len > 0:
			segs = append(segs, "data")
		}
	}
	return *r.ClientProgram.Exit, strings.Join(r.ClientProgram.StderrTail, "\n"), segs
}

// TestCurlCloseUnread: the server answers without reading the request and
// closes: a RST follows the response, and curl, on Linux, still gets the
// whole response.
func TestCurlCloseUnread(t *testing.T) {
	labtest.Privileged(t)
	needTools(t, "curl", "python3")
	server := endsServer(`c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nhello\n")
c.close()`)
	for _, family := range []string{"4", "6"} {
		exit, stderr, segs := serverSegments(t, family, "close-unread", "--server-cmd", server, "--client-cmd", curlURL)
		if exit != 0 {
			t.Errorf("IPv%s: curl against a server closing with the request unread: exit %d, %s", family, exit, stderr)
		}
		// A later segment of curl's (an ACK, its FIN) finds no socket and
		// draws another RST: repeats count once.
		if strings.Join(slices.Compact(slices.Clone(segs)), " ") != "data RST" {
			t.Errorf("IPv%s: the server's segments: %v, want the response, then a RST and no FIN", family, segs)
		}
	}
}

// TestCurlAbortiveClose: the server reads the request and closes with
// SO_LINGER {on, 0}: a RST and no FIN; curl fails with "Connection reset by
// peer" (exit 56).
func TestCurlAbortiveClose(t *testing.T) {
	labtest.Privileged(t)
	needTools(t, "curl", "python3")
	server := endsServer(`c.recv(4096)
c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
c.close()`)
	exit, stderr, segs := serverSegments(t, "4", "abortive-close", "--server-cmd", server, "--client-cmd", curlURL)
	if exit != 56 || !strings.Contains(stderr, "Connection reset by peer") {
		t.Errorf("curl against an abortive close: exit %d, %s", exit, stderr)
	}
	if strings.Join(segs, " ") != "RST" {
		t.Errorf("the server's segments: %v, want a RST alone", segs)
	}
	// And the built-in server does the same to curl.
	exit, stderr, segs = serverSegments(t, "6", "abortive-close", "--client-cmd", curlURL)
	if exit != 56 || strings.Join(segs, " ") != "RST" {
		t.Errorf("curl against the built-in server's abortive close: exit %d, %s; server segments %v", exit, stderr, segs)
	}
}

// TestOwnClientOutOfPorts: the client's narrowed port range applies to the
// user's own client: its third connection to the server port fails with
// EADDRNOTAVAIL ("Cannot assign requested address").
func TestOwnClientOutOfPorts(t *testing.T) {
	labtest.Privileged(t)
	needTools(t, "python3")
	client := `exec python3 -c '
import os, socket
addr = os.environ["TCPLAB_SERVER_ADDR"]
held = []
for i in range(3):
    s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
    s.connect((addr, int(os.environ["TCPLAB_SERVER_PORT"])))
    held.append(s)
'`
	for _, family := range []string{"4", "6"} {
		exit, stderr, _ := serverSegments(t, family, "port-exhaustion", "--client-cmd", client)
		if exit != 1 || !strings.Contains(stderr, "Errno 99") {
			t.Errorf("IPv%s: a third connection with two ports: exit %d, %s", family, exit, stderr)
		}
	}
}
