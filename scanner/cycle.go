package scanner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/gate"
	"github.com/imagebutler/imagebutler/ghapp"
	"github.com/imagebutler/imagebutler/gitwriter"
	"github.com/imagebutler/imagebutler/policy"
)

// Lister lists the images of an ECR repository. *ECR is the real one.
type Lister interface {
	List(ctx context.Context, ref policy.ImageRef) ([]policy.Image, error)
}

var _ Lister = (*ECR)(nil)

// MaxPushAttempts is how often a repository's push is tried in one cycle
// when the remote rejects it.
const MaxPushAttempts = 5

// Scanner runs cycles over the configured repositories.
type Scanner struct {
	cfg    *config.Config
	lister Lister
	log    *slog.Logger
	// backoff is the wait before push attempt n (n >= 1); tests shorten it.
	backoff func(n int) time.Duration
	metrics *Metrics
	dryRun  bool

	statusMu sync.Mutex
	status   Status

	sets setsCache // the butler's last writes per repository, by head

	memoMu sync.Mutex
	memos  map[string]*memo // by ECR repository and policy fingerprint, across cycles
	cycle  int

	lineages lineages // of the ECR repositories listed, across cycles

	known     *known // for targeted passes; nil without WithEvents
	repoMu    sync.Mutex
	repoLocks map[string]*sync.Mutex // by working copy name
	kept      map[string]*keptCopy   // by working copy name; each used under its repository's lock

	pullMu sync.Mutex
	pulls  map[string]map[int64]string // pull request states seen, by repository and number
	appMu  sync.Mutex
	apps   map[string]*ghapp.Installation // GitHub App installations, by repository name

	// autoMerges is what the forge last said of auto-merge of each pull
	// request, by repository and number: asked once per head.
	autoMerges map[string]autoMerged

	observers []func(RepoStatus) // told of each repository's result, as /status shows it

	checker *gate.Checker                   // judges candidates by their gates
	wake    func(repo string, at time.Time) // asked for a pass when a gated candidate comes of age

	shards Sharder // the repositories this replica works on; nil: all
}

// keptCopy is a repository's working copy kept open across cycles, and the
// discovery of its head when the last pass left the tree as it found it: a
// cycle whose remote did not move reads no file.
type keptCopy struct {
	co   *gitwriter.Checkout
	head plumbing.Hash // the head tree was discovered at; zero: none kept
	tree *gitwriter.Tree
	// exact says the pass left tree as it found it (wrote nothing): at the
	// same head it is reused whole, else it only spares the unchanged files.
	exact bool
}

// keep returns the kept copy of the repository whose working copy is named
// name (config.Repository.WorkDirName: unique, unlike Name), made on first use.
func (s *Scanner) keep(name string) *keptCopy {
	s.repoMu.Lock()
	defer s.repoMu.Unlock()
	if s.kept == nil {
		s.kept = map[string]*keptCopy{}
	}
	k, ok := s.kept[name]
	if !ok {
		k = &keptCopy{}
		s.kept[name] = k
	}
	return k
}

// dropTree forgets the kept discovery.
func (k *keptCopy) dropTree() {
	if k.tree != nil {
		k.tree.Close()
	}
	k.tree, k.head = nil, plumbing.ZeroHash
}

// memo is a policy.Memo kept across cycles, with the cycle that last used it.
type memo struct {
	mu       sync.Mutex
	m        *policy.Memo
	lastUsed int
}

// Option configures a Scanner.
type Option func(*Scanner)

// WithBackoff sets the wait before push attempt n+1 after n rejections. The
// default doubles from about half a second, with jitter.
func WithBackoff(f func(n int) time.Duration) Option {
	return func(s *Scanner) { s.backoff = f }
}

// WithMetrics records the cycle in m. The default records nothing.
func WithMetrics(m *Metrics) Option {
	return func(s *Scanner) { s.metrics = m }
}

// WithSignatures verifies the signatures the signature gate asks for with v.
func WithSignatures(v gate.Verifier) Option {
	return func(s *Scanner) { s.checker.Signatures = v }
}

// WithWake has f asked for a pass over the repository named repo at the
// moment a candidate its gates refused for its age comes of age (events
// mode: a poll may be an hour away).
func WithWake(f func(repo string, at time.Time)) Option {
	return func(s *Scanner) { s.wake = f }
}

// gatesField names where the gates of repo are set in the config.
func (s *Scanner) gatesField(repo config.Repository) string {
	if repo.Gates == nil {
		return "gates"
	}
	for i, r := range s.cfg.Repositories {
		if r.Name() == repo.Name() && r.Gates != nil {
			return fmt.Sprintf("repositories[%d].gates", i)
		}
	}
	return "the repository's gates"
}

// WithObserver has f told of each repository's result, cycle or targeted
// pass, as /status shows it, right after it is recorded. f must not block.
func WithObserver(f func(RepoStatus)) Option {
	return func(s *Scanner) { s.observers = append(s.observers, f) }
}

// WithDryRun makes cycles commit locally and report the diff (RepoResult.Diff)
// without pushing. The next cycle resets the working copy as usual.
func WithDryRun() Option {
	return func(s *Scanner) { s.dryRun = true }
}

// New returns a Scanner for cfg that reads ECR through lister and logs to log.
func New(cfg *config.Config, lister Lister, log *slog.Logger, opts ...Option) *Scanner {
	s := &Scanner{cfg: cfg, lister: lister, log: log, backoff: jitteredBackoff, memos: map[string]*memo{}, lineages: lineages{m: map[policy.ImageRef]*policy.Lineage{}},
		checker: &gate.Checker{}}
	if sc, ok := lister.(gate.Scanner); ok {
		s.checker.Scans = sc
	}
	for _, o := range opts {
		o(s)
	}
	if s.metrics != nil {
		s.metrics.addRepositories(cfg.Repositories)
	}
	return s
}

func jitteredBackoff(n int) time.Duration {
	d := time.Duration(1<<min(n, 6)) * 500 * time.Millisecond
	return d/2 + rand.N(d/2)
}

// RunOnce runs one cycle over every repository and returns their results in
// configuration order. One failing repository never stops the others: each
// works under its own timeout (repositoryTimeout), at most concurrency at once.
func (s *Scanner) RunOnce(ctx context.Context) []RepoResult {
	start := time.Now()
	s.statusMu.Lock()
	s.status.LastStarted = start
	s.statusMu.Unlock()
	listings := &listings{ctx: ctx, timeout: s.cfg.LongestTimeout(), lister: s.lister, metrics: s.metrics, lineages: &s.lineages, m: map[policy.ImageRef]*listing{}}
	s.memoMu.Lock()
	s.cycle++
	s.memoMu.Unlock()
	results := make([]RepoResult, len(s.cfg.Repositories))
	worked := make([]bool, len(s.cfg.Repositories))
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(1, s.cfg.Concurrency))
	for i, repo := range s.cfg.Repositories {
		end, ok := s.begin(repo)
		if !ok {
			continue // another replica's
		}
		worked[i] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer end()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] = s.runRepository(ctx, repo, listings)
		}()
	}
	wg.Wait()
	if s.shards != nil {
		var mine []RepoResult
		for i, r := range results {
			if worked[i] {
				mine = append(mine, r)
			}
		}
		results = mine
	}
	s.known.polled(listings)
	s.lineages.keep(listings)
	s.memoMu.Lock()
	for k, m := range s.memos {
		if m.lastUsed != s.cycle {
			delete(s.memos, k) // no policy uses it any more
		}
	}
	s.memoMu.Unlock()
	s.record(start, results)
	return results
}

// runRepository works on one repository under its timeout, and logs the outcome.
func (s *Scanner) runRepository(ctx context.Context, repo config.Repository, ls *listings) RepoResult {
	mu := s.lock(repo.WorkDirName())
	mu.Lock()
	defer mu.Unlock()
	start := time.Now()
	log := s.log.With("repo", repo.Name())
	timeout := s.repoTimeout(repo)
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r := s.repository(rctx, repo, ls, log)
	if r.Err != nil && errors.Is(rctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		r.Err = fmt.Errorf("timed out after %s: %w", timeout, r.Err)
	}
	r.Repository, r.Duration = repo.Name(), time.Since(start)
	shown, more := r.reported(s.cfg.MaxProblems)
	for _, p := range shown {
		log.Warn(p)
	}
	if more > 0 {
		log.Warn(fmt.Sprintf("and %d more problem(s); raise maxProblems to see them", more))
	}
	for _, m := range r.Markers {
		if m.State == MarkerHeld {
			log.Info("marker held", "marker", m.Location, "policy", m.Policy, "heldBy", m.HeldBy, "reason", m.Reason)
		}
	}
	switch outcome := r.Outcome(); outcome {
	case OutcomeFailed:
		log.Error("repository failed", "outcome", outcome, "err", Clip(r.Err.Error()), "duration", r.Duration)
	case OutcomePartial:
		log.Error("repository partly failed", "outcome", outcome, "commit", r.Commit, "changes", len(r.Changes), "err", Clip(r.Err.Error()), "duration", r.Duration)
	default:
		log.Info("repository done", "outcome", outcome, "commit", r.Commit, "changes", len(r.Changes), "duration", r.Duration)
	}
	return r
}

// record keeps the cycle's status and metrics.
func (s *Scanner) record(start time.Time, results []RepoResult) {
	now := time.Now()
	st := Status{LastStarted: start, LastFinished: now}
	failed := false
	states := map[string]int{PolicyResolved: 0, PolicyNoTag: 0, PolicyListFailed: 0, PolicyConflict: 0, PolicyGated: 0}
	gatedBy := map[string]int{gate.MinAge: 0, gate.Scan: 0, gate.Signature: 0}
	orphans := 0
	heldBy := map[string]int{HeldByAnnotation: 0, HeldRevert: 0, HeldDowngrade: 0}
	s.statusMu.Lock()
	prev := s.status.Repositories
	s.statusMu.Unlock()
	for _, r := range results {
		rs := r.status(now, s.cfg.MaxProblems)
		s.setShard(&rs)
		rs.carry(prev)
		st.Repositories = append(st.Repositories, rs)
		for _, f := range s.observers {
			f(rs)
		}
		failed = failed || r.Err != nil
		for _, p := range r.Policies {
			states[p.State]++
			for _, g := range p.Gated {
				gatedBy[g.Gate]++
			}
		}
		for _, m := range r.Markers {
			if m.State == MarkerNoPolicy {
				orphans++
			}
			if m.State == MarkerHeld {
				heldBy[m.HeldBy]++
			}
		}
		s.metrics.repository(now, r)
	}
	if m := s.metrics; m != nil {
		result := "success"
		if failed {
			result = "failure"
		}
		m.cycles.WithLabelValues(result).Inc()
		m.cycleDuration.Observe(now.Sub(start).Seconds())
		for state, n := range states {
			m.policies.WithLabelValues(state).Set(float64(n))
		}
		m.orphanMarkers.Set(float64(orphans))
		for reason, n := range heldBy {
			m.heldMarkers.WithLabelValues(reason).Set(float64(n))
		}
		for g, n := range gatedBy {
			m.gated.WithLabelValues(g).Set(float64(n))
		}
	}
	s.statusMu.Lock()
	st.Cycles = s.status.Cycles + 1
	s.status = st
	s.statusMu.Unlock()
}

// selectTag runs p's selection with the memo kept for its ECR repository
// and fingerprint, so that an unchanged listing costs nothing and one that
// grew by pushes costs the new images.
func (s *Scanner) selectTag(p *policy.Policy, l policy.Listing) policy.Result {
	key := p.Image.String() + "|" + p.Fingerprint()
	s.memoMu.Lock()
	m, ok := s.memos[key]
	if !ok {
		m = &memo{m: policy.NewMemo()}
		s.memos[key] = m
	}
	m.lastUsed = s.cycle
	s.memoMu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	return p.SelectMemo(l, m.m)
}

// WorkDir is the working copy directory of repo under stateDir.
func WorkDir(stateDir string, repo config.Repository) string {
	return filepath.Join(stateDir, repo.WorkDirName())
}

// checkout syncs the kept working copy of repo, or opens it (cloning when
// needed). A kept copy that fails other than on the remote's side is
// dropped and opened afresh, as on the first cycle.
func (s *Scanner) checkout(ctx context.Context, k *keptCopy, repo config.Repository, log *slog.Logger) (*gitwriter.Checkout, error) {
	if k.co != nil {
		err := k.co.Refresh(ctx, repo)
		if err == nil {
			return k.co, nil
		}
		if errors.Is(err, gitwriter.ErrRemote) || ctx.Err() != nil {
			return nil, err
		}
		log.Warn("the kept working copy failed to sync; opening it again", "err", Clip(err.Error()))
		k.co.Close()
		k.co = nil
		k.dropTree()
	}
	co, err := gitwriter.Open(ctx, WorkDir(s.cfg.StateDir, repo), repo, log)
	if err != nil {
		return nil, err
	}
	k.co = co
	k.dropTree()
	return co, nil
}

func (s *Scanner) repository(ctx context.Context, repo config.Repository, ls *listings, log *slog.Logger) RepoResult {
	var r RepoResult
	repo, err := s.credentials(ctx, repo)
	if err != nil {
		r.Err = err
		return r
	}
	k := s.keep(repo.WorkDirName())
	co, err := s.checkout(ctx, k, repo, log)
	if err != nil {
		r.Err = err
		return r
	}
	if err := useCommitAPI(co, repo); err != nil {
		r.Err = err
		return r
	}
	if repo.PullRequest != nil {
		return s.propose(ctx, co, k, repo, ls, log)
	}
	for attempt := 1; ; attempt++ {
		r.Head = co.Head.String()
		pass, err := s.pass(ctx, co, k, repo, ls)
		r.Changes, r.Problems, r.Policies, r.Markers = pass.changes, pass.problems, pass.policies, pass.markers
		if err != nil {
			r.Err = err
			return r
		}
		if len(pass.changes) == 0 {
			r.Err = pass.failed
			return r
		}
		h, _, err := s.commit(co, repo, pass)
		if err != nil {
			r.Err = err
			return r
		}
		if s.dryRun {
			r.Commit, r.Err = h.String(), pass.failed
			if r.Diff, err = co.Diff(h); err != nil {
				r.Err = err
			}
			return r
		}
		if err := s.fence(repo); err != nil {
			r.Err = fmt.Errorf("not pushed: %w", err)
			return r
		}
		err = co.Push(ctx)
		if err == nil {
			// Head: the commit on the remote (the forge's own, made
			// through its API, or h).
			r.Commit, r.Err = co.Head.String(), pass.failed
			return r
		}
		if !errors.Is(err, gitwriter.ErrRejected) || attempt == MaxPushAttempts {
			r.Err = fmt.Errorf("attempt %d of %d: %w", attempt, MaxPushAttempts, err)
			return r
		}
		if s.metrics != nil {
			s.metrics.pushRetries.WithLabelValues(repo.Name()).Inc()
		}
		wait := s.backoff(attempt)
		log.Warn("push rejected; syncing and trying again", "attempt", attempt, "wait", wait, "err", err.Error())
		select {
		case <-ctx.Done():
			r.Err = ctx.Err()
			return r
		case <-time.After(wait):
		}
		if err := co.Sync(ctx); err != nil {
			r.Err = err
			return r
		}
	}
}
