package experiments

import "sync"

// RunAll runs the cases, up to parallel at a time, each on its own lab, and
// returns the results in the order of cases. done, if set, is called with
// each result in that same order as soon as it and those before it are in.
func RunAll(cases []*Case, cfg Config, parallel int, done func(Result)) []Result {
	jobs := make([]Job, len(cases))
	for i, c := range cases {
		jobs[i] = Job{Case: c, Family: cfg.Family}
	}
	return RunJobs(jobs, cfg, parallel, done)
}

// Job is one case to run, in one address family.
type Job struct {
	Case   *Case
	Family int
}

// RunJobs is RunAll for jobs that may differ in family.
func RunJobs(jobs []Job, cfg Config, parallel int, done func(Result)) []Result {
	parallel = max(1, parallel)
	results := make([]Result, len(jobs))
	ready := make([]chan struct{}, len(jobs))
	for i := range ready {
		ready[i] = make(chan struct{})
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			c := cfg
			c.Family = j.Family
			results[i] = RunCase(j.Case, c)
			close(ready[i])
		}()
	}
	for i := range jobs {
		<-ready[i]
		if done != nil {
			done(results[i])
		}
	}
	wg.Wait()
	return results
}
