package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tcplab/tcplab/internal/labtest"
)

// Real third-party programs under the faults: curl as the client, python3
// as the server. .ci/run installs both.

type byoDoc struct {
	Results []struct {
		Case          string `json:"case"`
		Verdict       string `json:"verdict"`
		Error         string `json:"error"`
		ClientProgram *struct {
			Exit         *int     `json:"exit"`
			Signal       string   `json:"signal"`
			TimedOut     bool     `json:"timed_out"`
			AfterFaultMS *float64 `json:"after_fault_ms"`
			StderrTail   []string `json:"stderr_tail"`
		} `json:"client_program"`
		ServerProgram *struct {
			Signal string `json:"signal"`
		} `json:"server_program"`
		Timeline []struct {
			Kind   string `json:"kind"`
			Packet *struct {
				Proto    string `json:"proto"`
				Flags    string `json:"flags"`
				Src      string `json:"src"`
				ICMPType *uint8 `json:"icmp_type"`
			} `json:"packet"`
		} `json:"timeline"`
	} `json:"results"`
}

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed for this test (.ci/run installs it): %v", tool, err)
		}
	}
}

func runBYO(t *testing.T, args ...string) byoDoc {
	t.Helper()
	o := tcplab(t, "", append([]string{"run", "--json"}, args...)...)
	if o.code != 0 {
		t.Fatalf("tcplab run %v: status %d\n%s\n%s", args, o.code, o.stderr, o.stdout)
	}
	var d byoDoc
	if err := json.Unmarshal([]byte(o.stdout), &d); err != nil || len(d.Results) != 1 {
		t.Fatalf("JSON: %v\n%s", err, o.stdout)
	}
	r := d.Results[0]
	if r.Verdict != "observed" || r.ClientProgram == nil {
		t.Fatalf("result: verdict %s, error %q, client %+v", r.Verdict, r.Error, r.ClientProgram)
	}
	return d
}

const curl = `curl -sS --keepalive-time 1 -o /dev/null http://$TCPLAB_SERVER_ADDR:$TCPLAB_SERVER_PORT/`

func TestCurlRefused(t *testing.T) {
	labtest.Privileged(t)
	needTools(t, "curl")
	r := runBYO(t, "connect-refused", "--client-cmd", curl).Results[0]
	c := r.ClientProgram
	if c.Exit == nil || *c.Exit != 7 || !strings.Contains(strings.Join(c.StderrTail, "\n"), "Failed to connect") {
		t.Fatalf("curl against a refused port: %+v", c)
	}
}

func TestCurlUnreachable(t *testing.T) {
	labtest.Privileged(t)
	needTools(t, "curl", "python3")
	r := runBYO(t, "connect-unreachable", "--client-cmd", curl,
		"--server-cmd", `exec python3 -m http.server "$TCPLAB_SERVER_PORT" --bind "$TCPLAB_SERVER_ADDR"`).Results[0]
	c := r.ClientProgram
	if c.Exit == nil || *c.Exit != 7 {
		t.Fatalf("curl against an unreachable host: %+v", c)
	}
	icmp := false
	for _, e := range r.Timeline {
		icmp = icmp || (e.Packet != nil && e.Packet.Proto == "icmp" && *e.Packet.ICMPType == 3)
	}
	if !icmp {
		t.Error("no ICMP destination unreachable in the timeline")
	}
}

// slowServer streams a long HTTP response slowly, so the transfer is under
// way when the fault comes.
const slowServer = `exec python3 -c '
import os, socket, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((os.environ["TCPLAB_SERVER_ADDR"], int(os.environ["TCPLAB_SERVER_PORT"])))
s.listen()
c, _ = s.accept()
c.recv(4096)
c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n")
while True:
    c.sendall(b"x" * 1000)
    time.sleep(0.05)
'`

// TestCurlRebootedServer: the server host reboots in the middle of a
// download; curl's next segment (a keepalive probe) draws a RST.
func TestCurlRebootedServer(t *testing.T) {
	labtest.Privileged(t)
	needTools(t, "curl", "python3")
	r := runBYO(t, "host-reboot", "--client-cmd", curl, "--server-cmd", slowServer).Results[0]
	c := r.ClientProgram
	if c.Exit == nil || *c.Exit != 56 || !strings.Contains(strings.Join(c.StderrTail, "\n"), "Connection reset by peer") {
		t.Fatalf("curl during a reboot: %+v", c)
	}
	if r.ServerProgram == nil || r.ServerProgram.Signal != "SIGKILL" {
		t.Errorf("the server program should have died with its host: %+v", r.ServerProgram)
	}
	rst := false
	for _, e := range r.Timeline {
		rst = rst || (e.Packet != nil && e.Packet.Flags == "RST" && e.Packet.Src == "203.0.113.2")
	}
	if !rst {
		t.Error("no RST from the rebooted server in the timeline")
	}
}

// TestStubbornProgramsLeaveNothing: a client that ignores SIGTERM and forks
// children is stopped at its timeout, and a server that leaves a child
// behind loses it too: nothing of either outlives the run.
func TestStubbornProgramsLeaveNothing(t *testing.T) {
	labtest.Privileged(t)
	needTools(t, "curl", "python3")
	r := runBYO(t, "host-crash",
		"--client-cmd", `trap "" TERM; (trap "" TERM; exec sleep 4241) & curl -sS -o /dev/null http://$TCPLAB_SERVER_ADDR:$TCPLAB_SERVER_PORT/; sleep 4242`,
		"--server-cmd", `sleep 4243 & `+strings.TrimPrefix(slowServer, "exec "),
		"--client-timeout", "2s").Results[0]
	if !r.ClientProgram.TimedOut {
		t.Errorf("the client should have been stopped at its timeout: %+v", r.ClientProgram)
	}
	for _, marker := range []string{"4241", "4242", "4243"} {
		if pids := processesWith("sleep " + marker); len(pids) > 0 {
			t.Errorf("sleep %s still running: %v", marker, pids)
		}
	}
}

// processesWith lists processes whose command line contains s.
func processesWith(s string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(strings.ReplaceAll(string(b), "\x00", " "), s) {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestBYOBadInput(t *testing.T) {
	labtest.Privileged(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "accept-aborted", "--client-cmd", "true"}, "cannot run with your own programs"},
		{[]string{"run", "connect-refused", "--server-cmd", "true"}, "needs no server"},
		{[]string{"run", "host-crash", "--client-cmd", ""}, "need a command"},
		{[]string{"run", "host-crash", "--client-cmd", "true", "--client-timeout", "-1s"}, "--client-timeout"},
		{[]string{"fault", "nosuchlab", "crash"}, `no lab "nosuchlab"`},
		{[]string{"fault", "x", "bogus"}, "unknown fault"},
		{[]string{"fault", "x"}, "usage"},
	} {
		o := tcplab(t, "", c.args...)
		if o.code != 2 || !strings.Contains(o.stderr, c.want) || strings.Count(strings.TrimSpace(o.stderr), "\n") != 0 {
			t.Errorf("tcplab %v: status %d, stderr %q; want 2 and %q", c.args, o.code, o.stderr, c.want)
		}
	}
}
