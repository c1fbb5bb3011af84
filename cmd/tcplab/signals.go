package main

import (
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// signalStatus is the exit status after a signal: 128 plus its number, as
// a shell reports a process the signal killed.
func signalStatus(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return 128
}

// notIgnored drops the signals the process was started with ignored (as
// nohup and `cmd &` in a script do): catching one would undo that.
func notIgnored(sigs ...os.Signal) []os.Signal {
	var out []os.Signal
	for _, s := range sigs {
		if !signal.Ignored(s) {
			out = append(out, s)
		}
	}
	return out
}

// outputGone reports whether standard output has lost its reader: a pipe
// or socket whose other end is closed polls as an error or hang-up.
func outputGone() bool {
	p := []unix.PollFd{{Fd: 1}}
	n, err := unix.Poll(p, 0)
	return err == nil && n > 0 && p[0].Revents&(unix.POLLERR|unix.POLLHUP) != 0
}

// interruptState settles the race between a signal and the end of the
// work it would interrupt: whichever comes first wins.
type interruptState struct {
	mu                   sync.Mutex
	stopped, interrupted bool
}

// take claims the signal for the handler; false if the work ended first.
func (s *interruptState) take() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.interrupted = true
	return true
}

// stop ends the watch; false if a signal was taken first.
func (s *interruptState) stop() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.interrupted {
		return false
	}
	s.stopped = true
	return true
}

// shielded runs fn, a removal that must not stop half-way, with SIGINT,
// SIGTERM and SIGHUP held off. If one came meanwhile, tcplab exits with its
// status once fn is done, after reporting fn's error, if any. It is for the
// end of a command: the signals stay caught, and are ignored, until the
// process exits: signal.Stop makes a round trip to the Go runtime's
// signal-mask thread for each signal, 0.15 to 0.5 ms for four as measured
// at the end of `tcplab up`.
func shielded(fn func() error) error {
	sigs := notIgnored(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	if len(sigs) == 0 {
		return fn()
	}
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, sigs...)
	err := fn()
	select {
	case s := <-ch:
		if err != nil {
			fmt.Fprintln(os.Stderr, "tcplab: "+oneLine(err.Error()))
		}
		os.Exit(signalStatus(s))
	default:
	}
	return err
}
