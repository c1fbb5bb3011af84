package topology_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tcplab/tcplab/internal/labtest"
	"github.com/tcplab/tcplab/topology"
	"golang.org/x/sys/unix"
)

// forkingThread returns the thread of this process that forked child pid:
// children are recorded per thread (/proc/PID/task/TID/children), and the
// parent-death signal follows that thread.
func forkingThread(t *testing.T, pid int) int {
	t.Helper()
	tasks, err := filepath.Glob("/proc/self/task/*/children")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, s := range strings.Fields(string(b)) {
			if s == strconv.Itoa(pid) {
				tid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
				return tid
			}
		}
	}
	t.Fatalf("no thread of this process has child %d", pid)
	return 0
}

// alive reports whether the process behind pidfd has not exited.
func alive(t *testing.T, pidfd int) bool {
	t.Helper()
	p := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	n, err := unix.Poll(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	return n == 0
}

// TestStartSurvivesThreadChurn: the parent-death signal is tied to the
// thread that forked the child, and the Go runtime ends a thread whenever a
// goroutine exits locked to it. Start must keep that thread out of the
// runtime's pool while the child lives: here many goroutines lock every
// thread they can get and exit locked, ending those threads, and the
// child must survive, its forking thread untouched.
func TestStartSurvivesThreadChurn(t *testing.T) {
	l := newLab(t)
	cmd := exec.Command("/bin/sleep", "1000")
	if err := l.Server.Start(cmd); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { cmd.Wait(); close(waited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-waited })
	pidfd, err := unix.PidfdOpen(cmd.Process.Pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pidfd)
	forker := forkingThread(t, cmd.Process.Pid)

	tasks, _ := os.ReadDir("/proc/self/task")
	n := len(tasks) + 16 // more than there are threads: every idle one is taken
	tids := make(chan int, n)
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			tids <- unix.Gettid()
			<-release
			// Exit locked: the runtime ends this thread.
		}()
	}
	churned := map[int]bool{}
	for range n {
		churned[<-tids] = true
	}
	close(release)
	wg.Wait()
	if churned[forker] {
		t.Errorf("the thread that forked the child (%d) was handed to another goroutine", forker)
	}
	// Wait for the churned threads to be gone, as far as the runtime ends
	// them (it keeps the main thread).
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := 0
		for tid := range churned {
			if _, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", tid)); err == nil {
				left++
			}
		}
		if left <= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d locked threads still exist 10s after their goroutines exited", left)
		}
		time.Sleep(time.Millisecond)
	}
	if !alive(t, pidfd) {
		t.Fatal("the child was killed when threads of its parent ended")
	}
}

// helperEnv makes the test binary a helper process for the tests below.
const helperEnv = "TCPLAB_TOPOLOGY_HELPER"

// TestHelperProcess is not a test: run with helperEnv set, it is the
// process the tests below kill or shut down.
func TestHelperProcess(t *testing.T) {
	switch os.Getenv(helperEnv) {
	case "":
		return
	case "start":
		// Make a lab, start a child in it, report both, and wait to be
		// killed.
		l, err := topology.New(os.Getenv("TCPLAB_TOPOLOGY_LAB"))
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		if err := l.Up(topology.KindRun); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		cmd := exec.Command("/bin/sleep", "1000")
		if err := l.Server.Start(cmd); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("child", cmd.Process.Pid)
		select {}
	case "shutdown":
		// Make a lab of each kind and one half-built, start a child,
		// shut down, and check that nothing more can be made.
		id := os.Getenv("TCPLAB_TOPOLOGY_LAB")
		out := func(f string, a ...any) { fmt.Printf(f+"\n", a...) }
		for i, kind := range []string{topology.KindRun, topology.KindUp} {
			l, err := topology.New(fmt.Sprintf("%s%d", id, i))
			if err == nil {
				err = l.Up(kind)
			}
			if err != nil {
				out("error %v", err)
				os.Exit(1)
			}
			if i == 0 {
				if err := l.Server.Start(exec.Command("/bin/sleep", "1000")); err != nil {
					out("error %v", err)
					os.Exit(1)
				}
			}
		}
		if err := topology.Shutdown(); err != nil {
			out("error shutdown: %v", err)
		}
		l, _ := topology.New(id + "9")
		if err := l.Up(topology.KindRun); !errors.Is(err, topology.ErrShuttingDown) {
			out("error Up after Shutdown = %v", err)
		}
		out("done")
		os.Exit(0)
	}
}

func helper(t *testing.T, mode, lab string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "TCPLAB_TOPOLOGY_LAB="+lab)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, bufio.NewScanner(out)
}

// TestChildDiesWithParent: when the process that started a child in a lab
// is killed with SIGKILL, the kernel kills the child too, and Clean
// removes the lab the dead process left.
func TestChildDiesWithParent(t *testing.T) {
	labtest.Privileged(t)
	id := fmt.Sprintf("k%x", time.Now().UnixNano()&0xffffff)
	cmd, sc := helper(t, "start", id)
	if !sc.Scan() {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("the helper said nothing")
	}
	var pid int
	if _, err := fmt.Sscanf(sc.Text(), "child %d", &pid); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper: %q", sc.Text())
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pidfd)
	cmd.Process.Kill()
	cmd.Wait()
	p := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	if n, err := unix.Poll(p, 5000); err != nil || n == 0 {
		t.Errorf("the child still runs 5s after its parent was killed (%v)", err)
	}
	if _, err := topology.Clean(false); err != nil {
		t.Error(err)
	}
	labtest.NoLeftovers(t, id)
}

// TestShutdown: Shutdown removes every lab the process made, of either
// kind, with the processes in them, and nothing can be made afterwards. It
// runs in a helper process, since it shuts the whole package down.
func TestShutdown(t *testing.T) {
	labtest.Privileged(t)
	id := fmt.Sprintf("d%x", time.Now().UnixNano()&0xffffff)
	cmd, sc := helper(t, "shutdown", id)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := cmd.Wait(); err != nil || len(lines) == 0 || lines[len(lines)-1] != "done" {
		t.Fatalf("helper: %v, said %q", err, lines)
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "error") {
			t.Error(l)
		}
	}
	for _, suffix := range []string{"0", "1", "9"} {
		labtest.NoLeftovers(t, id+suffix)
	}
}

// TestClaimRace: many goroutines claim the same lab name at once; exactly
// one gets it, and a reader never sees a half-written state file.
func TestClaimRace(t *testing.T) {
	labtest.Privileged(t)
	id := fmt.Sprintf("c%x", time.Now().UnixNano()&0xffffff)
	stop := make(chan struct{})
	bad := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := topology.ReadState(id); err != nil && !errors.Is(err, topology.ErrNoLab) {
				select {
				case bad <- err:
				default:
				}
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	labs := make([]*topology.Lab, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			labs[i], _ = topology.New(id)
			errs[i] = labs[i].Up(topology.KindRun)
		}()
	}
	wg.Wait()
	close(stop)
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
			t.Cleanup(func() {
				if err := labs[i].Down(); err != nil {
					t.Error(err)
				}
				labtest.NoLeftovers(t, id)
			})
		case !errors.Is(err, topology.ErrExists):
			t.Errorf("claim %d: %v", i, err)
		}
	}
	if won != 1 {
		t.Errorf("%d claims won, want 1", won)
	}
	select {
	case err := <-bad:
		t.Errorf("a reader saw a broken state file: %v", err)
	default:
	}
}

// TestCleanKeepsLabsBeingBuilt: a lab whose live owner has not finished
// building it is kept by Clean; a temporary state file left by a dead
// writer is removed. (Clean(true) would remove other labs made by up on
// this machine: it is not called here.)
func TestCleanKeepsLabsBeingBuilt(t *testing.T) {
	labtest.Privileged(t)
	l := newLab(t)
	path := filepath.Join(topology.StateDir, l.ID+".json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := topology.ParseState(b)
	if err != nil {
		t.Fatal(err)
	}
	// Pretend it is an `up` lab still being built by this (live) process.
	notReady := strings.Replace(strings.Replace(string(b), `"ready":true`, `"ready":false`, 1), `"kind":"run"`, `"kind":"up"`, 1)
	if err := os.WriteFile(path, []byte(notReady), 0o600); err != nil {
		t.Fatal(err)
	}
	// A temporary file of a writer that is gone.
	child := exec.Command("/bin/true")
	if err := child.Run(); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(topology.StateDir, fmt.Sprintf(".%s.%d.1.tmp", l.ID, child.Process.Pid))
	if err := os.WriteFile(stale, b, 0o600); err != nil {
		t.Fatal(err)
	}
	removed, err := topology.Clean(false)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range removed {
		if r == l.ID {
			t.Errorf("Clean removed lab %s, still being built by live pid %d", l.ID, s.PID)
		}
	}
	if _, err := os.Stat(stale); err == nil {
		os.Remove(stale)
		t.Error("Clean left the temporary state file of a dead writer")
	}
}
