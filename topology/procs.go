package topology

import "fmt"

// Processes lists the processes inside the node's namespace (tcplab's own
// threads aside).
func (n *Node) Processes() ([]int, error) {
	ns, err := n.NS()
	if err != nil {
		return nil, err
	}
	ino, err := nsInode(ns)
	if err != nil {
		return nil, fmt.Errorf("identify namespace %s: %w", n.NSName, err)
	}
	return pidsIn(map[uint64]bool{ino: true})
}
