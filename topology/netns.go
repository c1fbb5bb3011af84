package topology

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetnsDir is where named network namespaces are bind-mounted, the same
// place iproute2 uses, so `ip netns` sees lab namespaces too.
const NetnsDir = "/run/netns"

// hostNS is the namespace of the main thread, opened while package init runs
// on that thread and before any goroutine could have switched it.
var hostNS, hostNSErr = netns.Get()

// HostNS returns a handle on the namespace tcplab was started in.
func HostNS() (netns.NsHandle, error) { return hostNS, hostNSErr }

// inNS runs fn on a fresh goroutine locked to its OS thread, after switching
// that thread into ns. If switching back fails, the goroutine exits still
// locked, so the runtime throws the thread away instead of reusing a thread
// that sits in the wrong namespace.
func inNS(ns netns.NsHandle, fn func() error) error {
	if hostNSErr != nil {
		return fmt.Errorf("open host network namespace: %w", hostNSErr)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(ns); err != nil {
			// The thread never left its namespace: safe to reuse.
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(hostNS); err != nil {
			errc <- fmt.Errorf("return to host network namespace: %w", err)
			return // still locked: the thread dies with the goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// createNamedNS makes a new network namespace and bind-mounts it at
// /run/netns/name, without ever moving a reusable thread out of the host
// namespace for longer than the call. inside, if not nil, runs on that
// thread while it is still in the new namespace, so configuring it costs no
// further switch.
func createNamedNS(name string, inside func() error) (netns.NsHandle, error) {
	if hostNSErr != nil {
		return netns.None(), fmt.Errorf("open host network namespace: %w", hostNSErr)
	}
	if err := prepareNetnsDir(); err != nil {
		return netns.None(), err
	}
	type result struct {
		h         netns.NsHandle
		err, ierr error
	}
	rc := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		h, err := netns.NewNamed(name)
		var ierr error
		if err == nil && inside != nil {
			if ierr = inside(); ierr != nil {
				h.Close()
				h = netns.None()
			}
		}
		// NewNamed unshares the calling thread even when the bind mount
		// fails afterwards, so always switch back.
		if serr := netns.Set(hostNS); serr != nil {
			if h.IsOpen() {
				h.Close()
			}
			rc <- result{netns.None(), fmt.Errorf("return to host network namespace: %w", serr), nil}
			return // thread stays locked and is discarded
		}
		runtime.UnlockOSThread()
		if err != nil {
			// A file may have been created before the mount failed.
			_ = unix.Unmount(filepath.Join(NetnsDir, name), unix.MNT_DETACH)
			_ = os.Remove(filepath.Join(NetnsDir, name))
		}
		rc <- result{h, err, ierr}
	}()
	r := <-rc
	if r.err != nil {
		return netns.None(), fmt.Errorf("create network namespace %s: %w", name, r.err)
	}
	// The namespace exists (mounted) even when inside failed: the caller
	// removes it by name.
	return r.h, r.ierr
}

// ErrNotNamespace reports a file where a lab namespace should be mounted
// that is not a mounted network namespace: the empty file a tcplab killed
// between creating it and bind-mounting the new namespace on it leaves (or
// one killed between unmounting and removing it), or anything else put
// there. Such a file is never entered, only removed.
var ErrNotNamespace = errors.New("not a mounted network namespace")

// openNamedNS opens an existing named namespace. Only a network namespace
// mounted there is opened: a plain file, a symbolic link, a namespace of
// another type or the host's own namespace gives ErrNotNamespace, so that
// nothing ever enters it or kills the processes it holds.
func openNamedNS(name string) (netns.NsHandle, error) {
	p := filepath.Join(NetnsDir, name)
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return netns.None(), fmt.Errorf("open network namespace %s: %w", name, &os.PathError{Op: "lstat", Path: p, Err: err})
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return netns.None(), fmt.Errorf("open network namespace %s: %w (not a regular file)", name, ErrNotNamespace)
	}
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		if err == unix.ELOOP {
			err = ErrNotNamespace
		}
		return netns.None(), fmt.Errorf("open network namespace %s: %w", name, &os.PathError{Op: "open", Path: p, Err: err})
	}
	if err := checkNetNS(fd); err != nil {
		unix.Close(fd)
		return netns.None(), fmt.Errorf("open network namespace %s: %w", name, err)
	}
	return netns.NsHandle(fd), nil
}

// checkNetNS makes sure fd refers to a network namespace (on nsfs, of type
// CLONE_NEWNET) other than the host's.
func checkNetNS(fd int) error {
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil {
		return fmt.Errorf("statfs: %w", err)
	}
	if fs.Type != unix.NSFS_MAGIC {
		return fmt.Errorf("%w (a plain file: no namespace was ever mounted on it, or it was unmounted)", ErrNotNamespace)
	}
	if t, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE); err == nil && t != unix.CLONE_NEWNET {
		return fmt.Errorf("%w (a namespace of another type)", ErrNotNamespace)
	}
	if hostNSErr == nil {
		var a, b unix.Stat_t
		if unix.Fstat(fd, &a) == nil && unix.Fstat(int(hostNS), &b) == nil && a.Dev == b.Dev && a.Ino == b.Ino {
			return fmt.Errorf("%w (it is the host's own namespace)", ErrNotNamespace)
		}
	}
	return nil
}

// deleteNamedNS unmounts and removes /run/netns/name. The kernel frees the
// namespace, and with it every link inside, once nothing else refers to it.
// A namespace that does not exist is not an error, and a file that is not a
// namespace (see ErrNotNamespace) is just removed: nothing is entered. A
// symbolic link there is removed, never followed.
func deleteNamedNS(name string) error {
	p := filepath.Join(NetnsDir, name)
	// Unmount until nothing is mounted there: a mount stacked on another
	// would keep the file busy.
	for i := 0; ; i++ {
		err := unix.Unmount(p, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
		if err == unix.EINVAL || err == unix.ENOENT {
			break
		}
		if err != nil {
			return fmt.Errorf("unmount network namespace %s: %w", name, err)
		}
		if i == 16 {
			return fmt.Errorf("unmount network namespace %s: still mounted after %d unmounts", name, i+1)
		}
	}
	if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove network namespace %s: %w", name, err)
	}
	return nil
}

// Exec replaces tcplab with the program at path, run inside the node's
// namespace: execve keeps the calling thread's namespaces. It returns only
// if execve fails, and then no thread of tcplab is left in the namespace:
// the switch and the execve happen on a thread of their own (Do), which
// switches back, or is thrown away if it cannot.
func (n *Node) Exec(path string, argv, env []string) error {
	return n.Do(func() error { return syscall.Exec(path, argv, env) })
}

// nsInode identifies a namespace by its nsfs inode, which is what
// /proc/PID/ns/net points at.
func nsInode(h netns.NsHandle) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(h), &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// prepareOnce makes NetnsDir a shared mount point once per process.
var prepareOnce struct {
	sync.Once
	err error
}

// prepareNetnsDir does what iproute2 does before its first namespace: make
// /run/netns a mount point with shared propagation, bind-mounting it onto
// itself if it is not one yet. Without this, a later `ip netns add` would
// bind-mount the directory over itself, non-recursively, and hide every
// lab namespace mounted there before, leaving files that can neither be
// entered nor removed.
func prepareNetnsDir() error {
	prepareOnce.Do(func() {
		if err := os.MkdirAll(NetnsDir, 0o755); err != nil {
			prepareOnce.err = fmt.Errorf("create %s: %w", NetnsDir, err)
			return
		}
		err := unix.Mount("", NetnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
		if err == unix.EINVAL { // not a mount point yet
			if mountedBelow(NetnsDir) {
				// Namespaces already mounted there (by an older tool)
				// would be duplicated under the new mount, and the
				// hidden copies would keep them alive: leave it as is.
				err = nil
				return
			}
			if err = unix.Mount(NetnsDir, NetnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err == nil {
				err = unix.Mount("", NetnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
			}
		}
		if err != nil {
			prepareOnce.err = fmt.Errorf("make %s a shared mount point: %w", NetnsDir, err)
		}
	})
	return prepareOnce.err
}

// mountedBelow reports whether anything is mounted under dir, from this
// process's mount table.
func mountedBelow(dir string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return true // unknown: do not risk hiding anything
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			return true
		}
	}
	return false
}
