package lab_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/tcplab/tcplab/capture"
	"github.com/tcplab/tcplab/impair"
	"github.com/tcplab/tcplab/lab"
)

// stream answers with a status line and headers, then sends nothing more
// until the client goes away: a long poll, a watch, a stalled download.
var stream = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	<-r.Context().Done()
})

// An HTTP server in the server node, the standard library's client in the
// client node, and the packets seen by the router between them.
func Example() {
	l, err := lab.Build() // in a test: l := lab.New(t)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()

	ln, err := l.Server.Listen("tcp", ":8080")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s\n", r.Host)
	}))

	capt, err := l.Router.Capture(l.Client)
	if err != nil {
		fmt.Println(err)
		return
	}
	client := &http.Client{Transport: &http.Transport{DialContext: l.Client.DialContext}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://203.0.113.2:8080/")
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(resp.Status, ": ", string(body))

	frames, _ := capt.Stop()
	syns := 0
	for _, f := range frames {
		if p := capture.Decode(f.Data); p.Proto == "tcp" && p.Flags == capture.SYN {
			syns++
		}
	}
	fmt.Println("SYNs the router saw from the client:", syns)
	// Output:
	// 200 OK: hello from 203.0.113.2:8080
	// SYNs the router saw from the client: 1
}

// A client with no timeout reading a response whose server host crashes
// waits on: nothing comes back, and with nothing of its own to send, its
// kernel has nothing to retransmit and no reason to give up. Here it is
// still waiting 3 s after the crash; Go's default keepalive would end the
// wait after about 2.5 minutes, a client with keepalive off never.
func Example_noTimeout() {
	l, err := lab.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	ln, err := l.Server.Listen("tcp", ":8080")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	go http.Serve(ln, stream)

	client := &http.Client{Transport: &http.Transport{DialContext: l.Client.DialContext}}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://203.0.113.2:8080/events", nil)
	resp, err := client.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Status)

	if err := l.Fault("crash", impair.Options{}); err != nil {
		fmt.Println(err)
		return
	}
	read := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(resp.Body)
		read <- err
	}()
	select {
	case err := <-read:
		fmt.Println("gave up:", err)
	case <-time.After(3 * time.Second):
		fmt.Println("still waiting 3s after the crash")
	}
	stop() // the example ends the wait itself
	fmt.Println("stopped:", <-read)
	// Output:
	// 200 OK
	// still waiting 3s after the crash
	// stopped: context canceled
}

// The same client with http.Client.Timeout gives up in time: the timeout
// bounds the whole exchange, the body's reading included.
func Example_clientTimeout() {
	l, err := lab.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	ln, err := l.Server.Listen("tcp", ":8080")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	go http.Serve(ln, stream)

	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{DialContext: l.Client.DialContext},
	}
	start := time.Now()
	resp, err := client.Get("http://203.0.113.2:8080/events")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Status)
	if err := l.Fault("crash", impair.Options{}); err != nil {
		fmt.Println(err)
		return
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	var ne net.Error
	fmt.Println("timed out:", errors.As(err, &ne) && ne.Timeout())
	fmt.Println("within 3s of the request:", time.Since(start) < 3*time.Second)
	// Output:
	// 200 OK
	// timed out: true
	// within 3s of the request: true
}

// A client without a deadline can still learn that its peer is gone: TCP
// keepalive probes a silent connection, and when no probe is answered the
// kernel fails it with ETIMEDOUT. Here probes start after 1 s of silence,
// one a second, and two unanswered end the connection. (For data the peer
// never acknowledges, the TCP_USER_TIMEOUT socket option, set in the
// dialer's Control, bounds the wait the same way.)
func Example_keepAlive() {
	l, err := lab.Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	ln, err := l.Server.Listen("tcp", ":8080")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ln.Close()
	go http.Serve(ln, stream)

	dial := l.Client.Dialer(&net.Dialer{
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: time.Second, Interval: time.Second, Count: 2},
	})
	client := &http.Client{Transport: &http.Transport{DialContext: dial}}
	resp, err := client.Get("http://203.0.113.2:8080/events")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.Status)
	if err := l.Fault("crash", impair.Options{}); err != nil {
		fmt.Println(err)
		return
	}
	crashed := time.Now()
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println("ETIMEDOUT:", errors.Is(err, syscall.ETIMEDOUT))
	fmt.Println("within 5s of the crash:", time.Since(crashed) < 5*time.Second)
	// Output:
	// 200 OK
	// ETIMEDOUT: true
	// within 5s of the crash: true
}
