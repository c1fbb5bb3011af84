package report

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
