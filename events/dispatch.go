package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/imagebutler/imagebutler/policy"
	"github.com/imagebutler/imagebutler/scanner"
)

// Target runs targeted passes; *scanner.Scanner is the real one.
type Target interface {
	// Users names the git repositories whose policies use ref.
	Users(ref policy.ImageRef) []string
	// Pass runs a targeted pass over the repository named repo.
	Pass(ctx context.Context, repo string, pushes []scanner.Push) (scanner.RepoResult, error)
}

var _ Target = (*scanner.Scanner)(nil)

// ErrPassFailed marks a trigger whose pass failed; the repository's error
// is wrapped.
var ErrPassFailed = errors.New("targeted pass failed")

// Dispatcher turns triggers into targeted passes: triggers for one
// repository whose events happened within the coalescing window of the
// first, or that arrive while a pass over it runs, become one pass, and each repository gets at most
// perMinute event-started passes a minute (one at once), whatever the
// senders do.
type Dispatcher struct {
	target    Target
	window    time.Duration
	perMinute int
	ctx       context.Context // passes run under it
	sem       chan struct{}   // passes at once, across repositories
	metrics   *Metrics
	log       *slog.Logger

	mu     sync.Mutex
	repos  map[string]*pending
	alarms map[string]alarm // by repository: the earliest pass asked for later
}

// alarm is a pass due at a moment (At).
type alarm struct {
	at    time.Time
	timer *time.Timer
}

// pending is what waits for a repository's next pass.
type pending struct {
	limiter   *rate.Limiter
	scheduled bool // a pass is due or running
	pushes    []scanner.Push
	since     []time.Time // when each trigger's event happened, for the latency histogram
	waiters   []chan error
}

// NewDispatcher returns a dispatcher whose passes run under ctx, at most
// concurrency at once. m may be nil.
func NewDispatcher(ctx context.Context, target Target, window time.Duration, perMinute, concurrency int, m *Metrics, log *slog.Logger) *Dispatcher {
	return &Dispatcher{
		target: target, window: window, perMinute: max(1, perMinute), ctx: ctx,
		sem: make(chan struct{}, max(1, concurrency)), metrics: m, log: log, repos: map[string]*pending{}, alarms: map[string]alarm{},
	}
}

// At asks for a pass over repo at the moment at (a gated candidate comes
// of age then): one alarm per repository, the earliest asked for, until it
// rings; a pass that runs meanwhile leaves it set (it may ask again).
func (d *Dispatcher) At(repo string, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if a, ok := d.alarms[repo]; ok && !a.at.After(at) {
		return
	} else if ok {
		a.timer.Stop()
	}
	wait := max(0, time.Until(at)) + time.Second // ECR's push times are whole seconds
	d.alarms[repo] = alarm{at, time.AfterFunc(wait, func() {
		d.mu.Lock()
		if a, ok := d.alarms[repo]; ok && a.at.Equal(at) {
			delete(d.alarms, repo)
		}
		d.mu.Unlock()
		if d.ctx.Err() == nil {
			d.Trigger(repo, nil, time.Now())
		}
	})}
}

// Trigger asks for a pass over repo that takes pushes into account; since
// is when the event happened. The channel receives the pass's outcome: nil
// when it finished without failing (pushed, or nothing to do), else an
// error wrapping ErrPassFailed, or the context's error when the dispatcher
// stops first.
func (d *Dispatcher) Trigger(repo string, pushes []scanner.Push, since time.Time) <-chan error {
	done := make(chan error, 1)
	d.mu.Lock()
	defer d.mu.Unlock()
	p, ok := d.repos[repo]
	if !ok {
		p = &pending{limiter: rate.NewLimiter(rate.Every(time.Minute/time.Duration(d.perMinute)), 1)}
		d.repos[repo] = p
	}
	p.pushes = append(p.pushes, pushes...)
	p.since = append(p.since, since)
	p.waiters = append(p.waiters, done)
	if !p.scheduled {
		p.scheduled = true
		d.schedule(repo, p)
	}
	return done
}

// Await triggers a pass over each of repos taking pushes into account and
// waits for them: nil when none failed, else their errors joined, or the
// context's error when ctx ends first (the passes go on).
func (d *Dispatcher) Await(ctx context.Context, repos []string, pushes []scanner.Push, since time.Time) error {
	var waits []<-chan error
	for _, repo := range repos {
		waits = append(waits, d.Trigger(repo, pushes, since))
	}
	var errs []error
	for _, w := range waits {
		select {
		case err := <-w:
			if err != nil {
				errs = append(errs, err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.Join(errs...)
}

// schedule starts repo's next pass once the window has passed since the
// first pending event happened (at once when it has already: an ECR event
// reaches the queue a moment after the push), or later when the
// repository's rate allows no pass sooner. d.mu is held.
func (d *Dispatcher) schedule(repo string, p *pending) {
	first := time.Now()
	for _, t := range p.since {
		if !t.IsZero() && t.Before(first) {
			first = t
		}
	}
	wait := max(time.Until(first.Add(d.window)), p.limiter.Reserve().Delay(), 0)
	time.AfterFunc(wait, func() { d.run(repo, p) })
}

// run runs one pass for what is pending on repo, then schedules the next
// if more arrived meanwhile.
func (d *Dispatcher) run(repo string, p *pending) {
	d.mu.Lock()
	pushes, since, waiters := p.pushes, p.since, p.waiters
	p.pushes, p.since, p.waiters = nil, nil, nil
	d.mu.Unlock()

	err := d.pass(repo, pushes, since)
	for _, w := range waiters {
		w <- err
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	if len(p.waiters) > 0 && d.ctx.Err() == nil {
		d.schedule(repo, p)
		return
	}
	if d.ctx.Err() != nil {
		for _, w := range p.waiters {
			w <- d.ctx.Err()
		}
		p.pushes, p.since, p.waiters = nil, nil, nil
	}
	p.scheduled = false
}

func (d *Dispatcher) pass(repo string, pushes []scanner.Push, since []time.Time) error {
	select {
	case d.sem <- struct{}{}:
	case <-d.ctx.Done():
		return d.ctx.Err()
	}
	defer func() { <-d.sem }()
	if err := d.ctx.Err(); err != nil {
		return err
	}
	d.log.Info("targeted pass", "repo", repo, "events", len(since), "pushes", len(pushes))
	r, err := d.target.Pass(d.ctx, repo, pushes)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPassFailed, err)
	}
	if r.Commit != "" && r.Diff == "" {
		for _, t := range since {
			if !t.IsZero() {
				d.metrics.observeLatency(time.Since(t))
			}
		}
	}
	if r.Err != nil {
		return fmt.Errorf("%w: %s: %w", ErrPassFailed, repo, r.Err)
	}
	return nil
}
