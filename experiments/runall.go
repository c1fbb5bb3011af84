package experiments

import "sync"

// RunAll runs the cases, up to parallel at a time, each on its own lab, and
// returns the results in the order of cases. done, if set, is called with
// each result in that same order as soon as it and those before it are in.
func RunAll(cases []*Case, cfg Config, parallel int, done func(Result)) []Result {
	parallel = max(1, parallel)
	results := make([]Result, len(cases))
	ready := make([]chan struct{}, len(cases))
	for i := range ready {
		ready[i] = make(chan struct{})
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] = RunCase(c, cfg)
			close(ready[i])
		}()
	}
	for i := range cases {
		<-ready[i]
		if done != nil {
			done(results[i])
		}
	}
	wg.Wait()
	return results
}
