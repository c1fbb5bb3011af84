package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tcplab/tcplab/experiments"
	"github.com/tcplab/tcplab/internal/labtest"
	"github.com/tcplab/tcplab/topology"
	"golang.org/x/sys/unix"
)

// labFiles watches, through inotify, the files of one lab appear: its
// temporary and final state files under the state directory and its
// namespace files under /run/netns. Those are the moments `tcplab up`
// changes what a killed tcplab leaves; each is sent on events with the
// time it was read.
type labFiles struct {
	f      *os.File
	events chan labEvent
}

type labEvent struct {
	name string
	at   time.Time
}

func watchLab(t *testing.T, id string) *labFiles {
	t.Helper()
	for dir, mode := range map[string]os.FileMode{topology.StateDir: 0o700, topology.NetnsDir: 0o755} {
		if err := os.MkdirAll(dir, mode); err != nil {
			t.Fatal(err)
		}
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatalf("inotify: %v", err)
	}
	for _, dir := range []string{topology.StateDir, topology.NetnsDir} {
		if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
			unix.Close(fd)
			t.Fatalf("watch %s: %v", dir, err)
		}
	}
	// Non-blocking, so the runtime's poller waits for it and Close ends
	// a pending Read.
	w := &labFiles{f: os.NewFile(uintptr(fd), "inotify"), events: make(chan labEvent, 64)}
	mine := func(name string) bool {
		return strings.HasPrefix(name, "tcplab-"+id+"-") || name == id+".json" || strings.HasPrefix(name, "."+id+".")
	}
	go func() {
		defer close(w.events)
		buf := make([]byte, 64<<10)
		for {
			n, err := w.f.Read(buf)
			if err != nil {
				return
			}
			at := time.Now()
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				l := int(binary.NativeEndian.Uint32(buf[off+12:]))
				name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+l]), "\x00")
				off += unix.SizeofInotifyEvent + l
				if mine(name) {
					select {
					case w.events <- labEvent{name, at}:
					default:
					}
				}
			}
		}
	}()
	t.Cleanup(w.close)
	return w
}

func (w *labFiles) close() { w.f.Close() }

// next waits for the next file of the lab to appear; false if p ended
// first.
func (w *labFiles) next(p *proc) (labEvent, bool) {
	select {
	case e, ok := <-w.events:
		return e, ok
	case <-p.done:
		// Events read before the exit still count.
		select {
		case e, ok := <-w.events:
			return e, ok
		default:
			return labEvent{}, false
		}
	}
}

// pinNamespaces opens each namespace file of lab id that exists, and
// returns a function that closes them. The kernel gives a freed namespace's
// inode number to the next namespace made anywhere, at once: a check by
// inode after teardown (processesIn) would see the processes of another
// lab made meanwhile. An open namespace keeps its number.
func pinNamespaces(id string) (release func()) {
	var fds []int
	for _, r := range topology.Roles {
		fd, err := unix.Open(filepath.Join(topology.NetnsDir, topology.NSName(id, r)), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
		if err == nil {
			fds = append(fds, fd)
		}
	}
	return func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
}

// killPoint is a moment to kill `tcplab up` at: delay after the anchor-th
// file of the lab appeared (anchor 0: after the process started).
type killPoint struct {
	anchor int
	delay  time.Duration
}

func (k killPoint) String() string {
	if k.anchor == 0 {
		return fmt.Sprintf("start+%v", k.delay.Round(10*time.Microsecond))
	}
	return fmt.Sprintf("file%d+%v", k.anchor, k.delay.Round(10*time.Microsecond))
}

// spinUntil waits for a moment finer than the runtime's timers resolve: a
// deliberate delay, the point at which the test kills.
func spinUntil(at time.Time) {
	for time.Now().Before(at) {
		runtime.Gosched()
	}
}

// upTimes runs one whole `tcplab up` and returns the times, after its
// first file appeared, of each file's appearance and of its exit; the lab
// is removed.
func upTimes(t *testing.T, name string) (files []time.Duration, exit time.Duration) {
	t.Helper()
	w := watchLab(t, name)
	p := startTcplab(t, "up", "--name", name)
	var first time.Time
	for {
		e, ok := w.next(p)
		if !ok {
			break
		}
		if first.IsZero() {
			first = e.at
		}
		files = append(files, e.at.Sub(first))
	}
	if code := p.wait(30 * time.Second); code != 0 || first.IsZero() {
		t.Fatalf("up --name %s: status %d, %d files seen; stderr:\n%s", name, code, len(files), p.stderr.String())
	}
	exit = p.ended.Sub(first)
	if o := tcplab(t, "", "down", name); o.code != 0 {
		t.Fatalf("down %s: %+v", name, o)
	}
	return files, exit
}

// TestKillUpAnywhere: `tcplab up` killed with SIGKILL at many moments of
// its work, from before its first file to after it is done: on each file
// of the lab appearing (state files, namespace files), and at even steps
// in between. After each kill `tcplab clean` succeeds and leaves nothing
// of the lab, or, if the lab was complete before the kill, keeps it for
// `tcplab down`, which then removes it all. A kill can land between the
// creation of a namespace file and the mount of the namespace on it,
// leaving a plain file there, or between writing a temporary state file
// and linking it into place.
func TestKillUpAnywhere(t *testing.T) {
	labtest.Privileged(t)
	t.Parallel()
	prefix := "k" + experiments.NewLabID()[:4]
	before := labtest.HostSnapshot(t)

	// What one `up` does here, now: when its files appear and when it
	// ends, timed from its first file.
	var files []time.Duration
	var work time.Duration
	for i := 0; i < 2; i++ {
		f, exit := upTimes(t, fmt.Sprintf("%sc%d", prefix, i))
		if exit > work {
			files, work = f, exit
		}
	}
	t.Logf("up: %d files, the last %v after the first, exit %v after the first", len(files), files[len(files)-1], work)

	// The kill points: a few during start-up, on each file, and 32 even
	// steps from the first file to a little past the end.
	var points []killPoint
	for _, d := range []time.Duration{0, time.Millisecond, 5 * time.Millisecond} {
		points = append(points, killPoint{0, d})
	}
	for i := range files {
		points = append(points, killPoint{i + 1, 0})
	}
	const steps = 32
	for i := 0; i < steps; i++ {
		points = append(points, killPoint{1, work * time.Duration(i) * 11 / 10 / steps})
	}

	// A few kills at a time, each on a lab of its own: one's clean may
	// remove what another's kill left (it must leave a lab still being
	// built alone), and the load moves the moments around further.
	const workers = 4
	left := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(points); i += workers {
				// A subtest each (t.Run may be called from several
				// goroutines at once): a failed check ends its point only.
				t.Run(fmt.Sprintf("%02d", i), func(t *testing.T) {
					what := killUpAt(t, fmt.Sprintf("%s%02d", prefix, i), points[i])
					mu.Lock()
					left[what]++
					mu.Unlock()
				})
			}
		}()
	}
	wg.Wait()
	var summary []string
	for w, n := range left {
		summary = append(summary, fmt.Sprintf("%s: %d", w, n))
	}
	sort.Strings(summary)
	t.Logf("%d kill points in %v; what the kills left: %s", len(points), time.Since(start).Round(time.Millisecond), strings.Join(summary, ", "))
	if after := labtest.HostSnapshot(t); after != before {
		t.Errorf("the host's network state changed:\n%s", labtest.SnapshotDiff(before, after))
	}
}

// killUpAt runs `tcplab up --name name`, kills it at point k, checks that
// clean (and, for a lab that was complete, down) removes everything of the
// lab, and returns a word for what the kill left.
func killUpAt(t *testing.T, name string, k killPoint) string {
	t.Helper()
	w := watchLab(t, name)
	defer w.close()
	p := startTcplab(t, "up", "--name", name)
	at := p.began
	for i := 0; i < k.anchor; i++ {
		e, ok := w.next(p)
		if !ok {
			break
		}
		at = e.at
	}
	spinUntil(at.Add(k.delay))
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("kill tcplab: %v", err)
	}
	code := p.wait(30 * time.Second)
	if code != -1 && code != 0 {
		t.Fatalf("up --name %s exited %d; stderr:\n%s", name, code, p.stderr.String())
	}

	// What the kill left.
	st, err := topology.Inspect(name)
	if err != nil {
		t.Fatalf("inspect %s after the kill at %v: %v", name, k, err)
	}
	inodes := labInodes(name)
	defer pinNamespaces(name)()
	temps := 0
	for _, f := range stateFilesOf(name) {
		if strings.HasSuffix(f, ".tmp") {
			temps++
		}
	}
	what := st.Condition.String()
	if code == 0 {
		what = "finished"
	}
	for _, role := range topology.Roles {
		if st.Node(role) == topology.NodeStub {
			what += "+stub"
		}
	}
	if temps > 0 {
		what += "+temp"
	}

	o := tcplab(t, "", "clean")
	// Other labs on the machine (other tests', broken on purpose) may
	// make clean report an error; none may be about this one.
	if (o.code != 0 && o.code != 2) || (o.code == 2 && strings.Contains(o.stderr, name)) {
		t.Errorf("kill at %v (left %s): clean: %+v", k, what, o)
	}
	if st.Condition == topology.LabReady {
		// Complete before the kill: a lab made by up, which clean keeps
		// and down removes.
		if strings.Contains(o.stdout, "removed lab "+name+"\n") {
			t.Errorf("kill at %v: clean removed the complete lab %s: %+v", k, name, o)
		}
		if o := tcplab(t, "", "down", name); o.code != 0 {
			t.Errorf("kill at %v: down %s: %+v", k, name, o)
		}
	}
	if n := leftovers(name, inodes); n > 0 {
		t.Errorf("kill at %v (left %s): %d leftovers after clean", k, what, n)
		noLeftovers(t, name, inodes)
	}
	return what
}
