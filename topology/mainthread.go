package topology

import "runtime"

// The main goroutine stays on the main thread for the life of the process,
// so no other goroutine ever runs there and the main thread never enters a
// lab namespace. /proc/PID/ns/net shows the main thread's namespace, and
// KillProcesses, in this or another tcplab, kills every process it finds in
// a lab's namespace: a tcplab whose main thread were briefly inside a lab
// (in Node.Do, say) while another removed that lab would be killed.
func init() { runtime.LockOSThread() }
