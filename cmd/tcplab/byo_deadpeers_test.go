package main

import (
	"strings"
	"testing"

	"github.com/tcplab/tcplab/internal/labtest"
)

// curl waiting for a response from a server host that dies: its
// --keepalive-time shortens keepalive (TCP_KEEPIDLE and TCP_KEEPINTVL; the
// probe count stays the kernel's 9), so it notices; with curl's default
// (60 s) nothing happens for a minute.

const curlWaiting = `curl -sS -o /dev/null http://$TCPLAB_SERVER_ADDR:$TCPLAB_SERVER_PORT/`

func TestCurlKeepaliveCrash(t *testing.T) {
	labtest.Privileged(t)
	needTools(t, "curl")
	r := runBYO(t, "keepalive-crash", "--client-cmd", strings.Replace(curlWaiting, "curl ", "curl --keepalive-time 1 ", 1), "--client-timeout", "16s").Results[0]
	c := r.ClientProgram
	if c.TimedOut || c.Exit == nil || *c.Exit == 0 || !strings.Contains(strings.Join(c.StderrTail, "\n"), "timed out") {
		t.Fatalf("curl --keepalive-time 1 against a crashed server: %+v", c)
	}
	// Idle 1 s, then 9 probes 1 s apart: the error 10 s after the crash.
	if c.AfterFaultMS == nil || *c.AfterFaultMS < 9500 || *c.AfterFaultMS > 12500 {
		t.Errorf("curl gave up %v ms after the crash, want about 10000", c.AfterFaultMS)
	}
	probes := 0
	for _, e := range r.Timeline {
		if e.Packet != nil && e.Packet.Flags == "ACK" && e.Packet.Src == "198.51.100.2" {
			probes++
		}
	}
	if probes < 9 {
		t.Errorf("%d bare ACKs from the client in the timeline, want the 9 keepalive probes at least", probes)
	}
}

func TestCurlNoKeepaliveCrash(t *testing.T) {
	labtest.Privileged(t)
	needTools(t, "curl")
	r := runBYO(t, "keepalive-crash", "--client-cmd", curlWaiting, "--client-timeout", "12s").Results[0]
	if c := r.ClientProgram; !c.TimedOut {
		t.Fatalf("curl without --keepalive-time should still be waiting when stopped: %+v", c)
	}
}
