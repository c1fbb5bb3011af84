package report

import (
	"fmt"
)

// row is one line of the text timeline before condensing: key is the line
// without its time, so repeats (retransmissions) can be folded.
type row struct {
	at  float64
	key string
}

// repeats counts how many times the first period rows repeat in a row.
func repeats(rows []row, period int) int {
	if len(rows) < period {
		return 0
	}
	n := 1
	for j := period; j+period <= len(rows); j += period {
		for k := 0; k < period; k++ {
			if rows[j+k].key != rows[k].key {
				return n
			}
		}
		n++
	}
	return n
}

func unreachName(code uint8) string {
	names := map[uint8]string{0: "net-unreachable", 1: "host-unreachable", 2: "prot-unreachable", 3: "port-unreachable",
		4: "frag-needed", 9: "net-prohibited", 10: "host-prohibited", 13: "admin-prohibited"}
	if n, ok := names[code]; ok {
		return n
	}
	return fmt.Sprintf("unreachable code %d", code)
}
