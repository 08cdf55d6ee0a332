package scanner

import (
	"context"
	"time"

	"github.com/robfig/cron/v3"
)

// Run runs cycles until ctx is done: the first at once, then each at the
// time schedule gives after the previous one started. Two cycles never run
// at once: one that overruns delays the next, which then starts as soon as
// it ends, and the log says so. Cycles work under work rather than ctx, so
// that the caller can let a running cycle finish after ctx is done, and
// cancel work when a grace period runs out.
func (s *Scanner) Run(ctx, work context.Context, schedule cron.Schedule) {
	for cycle := 1; ; cycle++ {
		start := time.Now()
		s.log.Info("cycle started", "cycle", cycle)
		results := s.RunOnce(work)
		failed := 0
		for _, r := range results {
			if r.Err != nil {
				failed++
			}
		}
		s.log.Info("cycle done", "cycle", cycle, "repositories", len(results), "failed", failed, "duration", time.Since(start).Round(time.Millisecond))
		if ctx.Err() != nil {
			return
		}
		next := schedule.Next(start)
		wait := time.Until(next)
		if wait <= 0 {
			s.log.Warn("the cycle took longer than the schedule allows; the next starts now",
				"duration", time.Since(start).Round(time.Millisecond), "was due", next.Format(time.RFC3339))
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
