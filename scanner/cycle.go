package scanner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

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

// RepoResult is the outcome of one repository in one cycle.
type RepoResult struct {
	Repository string // name without credentials
	Commit     string // pushed commit; empty when nothing changed
	Head       string // remote head the working copy was at
	Changes    []gitwriter.Change
	// Problems are per-annotation, per-marker and per-policy problems; the
	// repository was still processed.
	Problems []error
	// Err is set when the repository failed this cycle.
	Err      error
	Duration time.Duration
	// Policies and Markers say what each policy resolved to and what became
	// of each marker.
	Policies []PolicyStatus
	Markers  []MarkerStatus
	// Diff is the unified diff of the commit, in a dry run.
	Diff string
	// PullRequest is what became of the pull request, in pull-request mode.
	PullRequest *PullRequestStatus
}

// Outcomes of a repository in one cycle, as RepoResult.Outcome, /status and
// the log name them.
const (
	OutcomePushed    = "pushed"     // a commit was pushed; nothing failed
	OutcomeWouldPush = "would push" // a dry run made a commit it did not push
	OutcomeUpToDate  = "up to date" // nothing to change; nothing failed
	// OutcomePartial: a commit was pushed (or, in a dry run, made) but some
	// policies failed (an ECR listing, an unknown region); Err says which.
	OutcomePartial = "partial"
	OutcomeFailed  = "failed" // nothing was pushed; Err says why
)

// Outcome names what became of the repository: one of the Outcome constants.
func (r RepoResult) Outcome() string {
	switch {
	case r.Err != nil && r.Commit != "":
		return OutcomePartial
	case r.Err != nil:
		return OutcomeFailed
	case r.Commit != "" && r.Diff != "":
		return OutcomeWouldPush
	case r.Commit != "":
		return OutcomePushed
	}
	return OutcomeUpToDate
}

// Summary is the one-line report of the result. A pushed commit is always
// named, also when some policies failed.
func (r RepoResult) Summary() string {
	var b strings.Builder
	commit := r.Commit[:min(len(r.Commit), 12)]
	switch r.Outcome() {
	case OutcomeFailed:
		fmt.Fprintf(&b, "FAIL %s: %s", r.Repository, Clip(r.Err.Error()))
	case OutcomePartial:
		verb := "pushed"
		if r.Diff != "" {
			verb = "would push (dry run)"
		}
		fmt.Fprintf(&b, "PARTIAL %s: %d change(s), %s %s; failed: %s", r.Repository, len(r.Changes), verb, commit, Clip(r.Err.Error()))
	case OutcomeWouldPush:
		fmt.Fprintf(&b, "ok   %s: %d change(s), would push (dry run)", r.Repository, len(r.Changes))
	case OutcomePushed:
		fmt.Fprintf(&b, "ok   %s: %d change(s), pushed %s", r.Repository, len(r.Changes), commit)
	default:
		fmt.Fprintf(&b, "ok   %s: up to date", r.Repository)
	}
	if p := r.PullRequest; p != nil && (p.Action != "" || p.Number != 0) {
		switch {
		case p.Action == "would open" || p.Action == "would update":
			fmt.Fprintf(&b, "; %s a pull request from %s into %s: %q", p.Action, p.Branch, p.Base, p.Title)
		case p.Number != 0:
			fmt.Fprintf(&b, "; pull request #%d %s", p.Number, cmp.Or(p.Action, p.State))
			if p.URL != "" {
				fmt.Fprintf(&b, " %s", p.URL)
			}
		default:
			fmt.Fprintf(&b, "; %s %s", p.Branch, p.Action)
		}
	}
	var notes []string
	if n := r.held(); n > 0 {
		notes = append(notes, fmt.Sprintf("%d held", n))
	}
	if len(r.Problems) > 0 {
		notes = append(notes, fmt.Sprintf("%d problem(s)", len(r.Problems)))
	}
	if len(notes) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(notes, ", "))
	}
	return b.String()
}

// held counts the markers that kept their value on purpose.
func (r RepoResult) held() int {
	n := 0
	for _, m := range r.Markers {
		if m.State == MarkerHeld {
			n++
		}
	}
	return n
}

// MaxMessage is the most of one error message the log, /status and the
// summary echo: a hostile remote cannot fill them with one answer.
const MaxMessage = 1024

// Clip cuts s to about MaxMessage bytes, saying how much it left out: at a
// space when one is near the cut, never inside a character, and keeping a
// trailing " (hint: ...)" whole.
func Clip(s string) string {
	if len(s) <= MaxMessage {
		return s
	}
	// A hint at the end is what a person acts on: it is kept whole, and
	// the text before it is cut instead, at a space where one is near.
	tail := ""
	if i := strings.LastIndex(s, " (hint: "); i > 0 && len(s)-i <= MaxMessage/2 {
		s, tail = s[:i], s[i:]
	}
	cut := MaxMessage - len(tail)
	if sp := strings.LastIndexByte(s[:cut], ' '); sp > 0 && sp > cut-80 {
		cut = sp
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s... (%d more bytes)%s", s[:cut], len(s)-cut, tail)
}

// reported is what the log and /status show of the problems: the first limit
// (config.DefaultProblemsReported when max is 0), each clipped, and how many
// more there were.
func (r RepoResult) reported(limit int) (shown []string, more int) {
	if limit <= 0 {
		limit = config.DefaultProblemsReported
	}
	for i, p := range r.Problems {
		if i == limit {
			return shown, len(r.Problems) - limit
		}
		shown = append(shown, Clip(p.Error()))
	}
	return shown, 0
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
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(1, s.cfg.Concurrency))
	for i, repo := range s.cfg.Repositories {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] = s.runRepository(ctx, repo, listings)
		}()
	}
	wg.Wait()
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

// commit makes the butler's commit of pass's files on co's head: the
// message from git.commitMessage (or the default) with the trailers that
// record what it set, signed when git.signing (or git.signingKeyFile) is
// set: the key is read at each commit, so a rotated key is used at once.
func (s *Scanner) commit(co *gitwriter.Checkout, repo config.Repository, pass passResult) (plumbing.Hash, string, error) {
	msg, err := gitwriter.MessageGated(s.cfg.CommitTemplate, repo.Name(), pass.changes, pass.passed)
	if err != nil {
		return plumbing.ZeroHash, "", err
	}
	msg = gitwriter.WithTrailers(msg, pass.set)
	signer, err := gitwriter.LoadSigner(s.cfg.Git.SigningKey())
	if err != nil {
		return plumbing.ZeroHash, "", err
	}
	h, err := co.Commit(pass.files, msg, s.cfg.Git.Author, signer)
	return h, msg, err
}

type passResult struct {
	// wake, when not zero, is when a gated candidate comes of age.
	wake time.Time
	// passed are the gates each policy's choice passed, by policy id.
	passed   map[string][]string
	changes  []gitwriter.Change
	files    []string
	problems []error
	failed   error             // ECR listing failures, unknown regions: the repository fails, but resolved policies still apply
	set      map[string]string // policy id → tag, for the policies the changes set (the commit's trailers)
	policies []PolicyStatus
	markers  []MarkerStatus
}

// Limits are the discovery budgets of cfg (its discovery settings).
func Limits(cfg *config.Config) gitwriter.Limits {
	return gitwriter.Limits{MaxFileBytes: int64(cfg.Discovery.MaxFileMiB * (1 << 20)), MaxNodes: cfg.Discovery.MaxNodes}
}

// discover returns the discovery of the working copy at its head: the kept
// one when the head did not move; else one that reads only the files that
// changed since the kept one's head; else a full one.
func (s *Scanner) discover(co *gitwriter.Checkout, k *keptCopy, repo config.Repository) (*gitwriter.Tree, error) {
	if k.tree != nil && k.head == co.Head && k.exact {
		return k.tree, nil
	}
	var since *gitwriter.Changes
	if k.tree != nil {
		var err error
		if since, err = co.ChangesSince(k.head); err != nil {
			since = nil // read everything
		}
	}
	return Limits(s.cfg).DiscoverSince(k.tree, since, co.Dir, repo.Paths, repo.Namespace)
}

// pass discovers, resolves and rewrites the working copy once.
func (s *Scanner) pass(ctx context.Context, co *gitwriter.Checkout, k *keptCopy, repo config.Repository, ls *listings) (passResult, error) {
	return s.passWith(ctx, co, k, repo, ls, nil)
}

// passWith is pass, holding also the values closed pull requests rejected.
func (s *Scanner) passWith(ctx context.Context, co *gitwriter.Checkout, k *keptCopy, repo config.Repository, ls *listings, rejected map[string]rejection) (passResult, error) {
	var out passResult
	tree, err := s.discover(co, k, repo)
	if err != nil {
		return out, err
	}
	tree.ClearHolds()
	// The tree is kept for the next pass: whole if this one writes nothing,
	// else for the files that will not have changed.
	head, exact := co.Head, false
	defer func() {
		if k.tree != tree {
			k.dropTree()
		}
		k.tree, k.head, k.exact = tree, head, exact
	}()
	out.problems = append(out.problems, tree.Problems...)

	policies, problems := FindPolicies(tree, s.cfg.AWS.Region)
	// A policy whose region is unknown cannot keep its markers up to date:
	// that fails the repository (its other policies still apply).
	var failures []error
	for _, p := range problems {
		if errors.Is(p, policy.ErrNoRegion) {
			failures = append(failures, p)
		} else {
			out.problems = append(out.problems, p)
		}
	}

	ids := make([]string, 0, len(policies))
	var refs []policy.ImageRef
	for id, p := range policies {
		ids = append(ids, id)
		if p.Err == nil && !slices.Contains(refs, p.Image) {
			refs = append(refs, p.Image)
		}
	}
	sort.Strings(ids)
	s.known.used(repo.Name(), refs)
	// List every ECR repository these policies use at once; the lister
	// bounds the requests in flight, and each is listed once per cycle.
	var wg sync.WaitGroup
	for _, id := range ids {
		if p := policies[id]; p.Err == nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ls.list(ctx, p.Image)
			}()
		}
	}
	wg.Wait()

	resolved := map[string]gitwriter.Resolution{}
	for id := range FailedPolicies(policies, problems) {
		resolved[id] = gitwriter.Resolution{Err: fmt.Errorf("%w: the annotation that defines it failed", gitwriter.ErrReported)}
	}
	chosen := map[string]Choice{}
	// A failed listing is reported once per ECR repository, naming the
	// policies it holds up; their markers only say that it failed.
	var (
		failedRefs []policy.ImageRef
		listFailed = map[policy.ImageRef][]string{}
		listErr    = map[policy.ImageRef]error{}
		gatedBy    = map[string]GatedStatus{} // the best gated candidate, by policy
	)
	for _, id := range ids {
		p := policies[id]
		ps := PolicyStatus{ID: id, Image: p.Image.Name(), Filter: p.Filter(), Order: p.Ordering(), DefinedIn: p.File + " (" + p.Object.String() + ")"}
		var (
			l   policy.Listing
			err error
		)
		if p.Err == nil {
			l, err = ls.list(ctx, p.Image)
		}
		switch {
		case p.Err != nil:
			resolved[id] = gitwriter.Resolution{Err: p.Err}
			ps.State, ps.Reason = PolicyConflict, p.Err.Error()
		case err != nil:
			resolved[id] = gitwriter.Resolution{Err: fmt.Errorf("listing ECR %s failed", p.Image)}
			if _, seen := listErr[p.Image]; !seen {
				failedRefs = append(failedRefs, p.Image)
				listErr[p.Image] = err
			}
			listFailed[p.Image] = append(listFailed[p.Image], id)
			ps.State, ps.Reason = PolicyListFailed, err.Error()
		default:
			res := s.selectTag(p.Policy, l)
			ps.Seen, ps.Excluded, ps.Filtered, ps.Unparsable = res.Seen, res.Excluded, res.Filtered, res.Unparsable
			set, gateErrs := gate.For(s.cfg.GatesOf(repo), s.gatesField(repo), p.Policy)
			for _, e := range gateErrs {
				out.problems = append(out.problems, fmt.Errorf("%s: %s: %w", p.File, p.Object, e))
			}
			if !set.Empty() {
				ps.Gates = set.String()
				ch := gate.Choose(ctx, s.checker, p.Policy, l.Images, res, set)
				res = ch.Result
				for i, g := range ch.Gated {
					if i == 0 {
						gatedBy[id] = GatedStatus{Tag: g.Tag, Gate: g.Gate, Reason: g.Reason}
					}
					ps.Gated = append(ps.Gated, GatedStatus{Tag: g.Tag, Gate: g.Gate, Reason: g.Reason})
					s.log.Info("candidate gated", "repo", repo.Name(), "policy", id, "tag", g.Tag, "gate", g.Gate, "reason", g.Reason)
				}
				if !ch.Wake.IsZero() && (out.wake.IsZero() || ch.Wake.Before(out.wake)) {
					out.wake = ch.Wake
				}
				ps.Passed = ch.Passed
				if len(ch.Passed) > 0 {
					if out.passed == nil {
						out.passed = map[string][]string{}
					}
					out.passed[id] = ch.Passed
				}
				if !res.OK() && len(ch.Gated) > 0 {
					g := ch.Gated[0]
					reason := fmt.Sprintf("every candidate is gated; the newest, %s: %s (%s)", g.Tag, g.Reason, g.Gate)
					resolved[id] = gitwriter.Resolution{Err: errors.New(reason)}
					ps.State, ps.Reason = PolicyGated, reason
					break
				}
			}
			if !res.OK() {
				resolved[id] = gitwriter.Resolution{Err: errors.New(res.Reason())}
				out.problems = append(out.problems, fmt.Errorf("%s: %s: %s: policy %s: %s", p.File, p.Object, p.Key, id, res.Reason()))
				ps.State, ps.Reason = PolicyNoTag, res.Reason()
				break
			}
			resolved[id] = gitwriter.Resolution{Image: p.Image.Name(), Tag: res.Tag, Digest: res.Digest, Digests: p.DigestReflection}
			chosen[id] = Choice{p.Policy, res, l.Images}
			ps.State, ps.Tag, ps.Digest, ps.PushedAt = PolicyResolved, res.Tag, res.Digest, res.PushedAt
		}
		out.policies = append(out.policies, ps)
	}
	if ctx.Err() != nil {
		return out, ctx.Err()
	}
	for _, ref := range failedRefs {
		ids := listFailed[ref]
		what := "policy"
		if len(ids) > 1 {
			what = "policies"
		}
		failures = append(failures, fmt.Errorf("%s %s: %w", what, strings.Join(ids, ", "), listErr[ref]))
	}
	out.failed = errors.Join(failures...)

	heldMarkers := Holds(co, tree, chosen, s.cfg.Git.Author.Email, s.sets.lastSets(repo.Name(), co, s.cfg.Git.Author.Email))
	holdRejected(tree, chosen, rejected, heldMarkers)
	for loc := range heldMarkers {
		tree.Hold(loc)
	}
	changes, problems := tree.Apply(resolved)
	co.MarkDirty(tree.Touched()...)
	exact = len(changes) == 0 && !s.dryRun
	out.changes = changes
	out.set = map[string]string{}
	for _, c := range changes {
		out.set[c.Policy] = resolved[c.Policy].Tag
	}
	out.problems = append(out.problems, problems...)
	seen := map[string]bool{}
	changed := map[string]gitwriter.Change{}
	for _, c := range changes {
		changed[fmt.Sprintf("%s:%d", c.File, c.Line)] = c
		if !seen[c.File] {
			seen[c.File] = true
			out.files = append(out.files, c.File)
		}
	}
	for _, m := range tree.Markers {
		ms := MarkerStatus{Location: m.Location(), Policy: m.Policy, Setter: string(m.Setter), Value: m.Value, State: MarkerCurrent}
		if ms.Setter == "" {
			ms.Setter = "image"
		}
		r, known := resolved[m.Policy]
		h, isHeld := heldMarkers[m.Location()]
		switch c, ok := changed[m.Location()]; {
		case isHeld:
			ms.State, ms.HeldBy, ms.Reason = MarkerHeld, h.Kind, h.Reason
		case ok:
			ms.State, ms.Value = MarkerUpdated, c.New
		case !known:
			ms.State = MarkerNoPolicy
		case r.Err != nil || m.Setter == gitwriter.SetDigest && r.Digest == "":
			ms.State = MarkerUnresolved
		}
		// A marker that would have moved to a candidate a gate refused
		// waits for it, and says so.
		if g, gated := gatedBy[m.Policy]; gated && (ms.State == MarkerCurrent || ms.State == MarkerUnresolved) && m.Setter != gitwriter.SetName {
			ms.State, ms.HeldBy, ms.Reason = MarkerGated, g.Gate, g.Tag+": "+g.Reason
		}
		out.markers = append(out.markers, ms)
	}
	if s.wake != nil && !out.wake.IsZero() {
		s.wake(repo.Name(), out.wake)
	}
	return out, nil
}

// listings lists each ECR repository at most once per cycle, whichever
// repositories and policies ask for it. A listing runs under the cycle's
// context, bounded by the longest repository timeout, so that one
// repository's timeout does not fail another's policies; each asker waits
// for it only as long as its own context allows.
type listings struct {
	ctx      context.Context
	timeout  time.Duration
	lister   Lister
	metrics  *Metrics
	lineages *lineages
	mu       sync.Mutex
	m        map[policy.ImageRef]*listing
}

// lineages follows each ECR repository's listings across cycles (a hash
// per repository, no image), so that selection knows a listing for the
// last one, or for it plus new images.
type lineages struct {
	mu sync.Mutex
	m  map[policy.ImageRef]*policy.Lineage
}

// next returns images, ref's listing now, as a Listing of ref's lineage.
func (ls *lineages) next(ref policy.ImageRef, images []policy.Image) policy.Listing {
	ls.mu.Lock()
	l, ok := ls.m[ref]
	if !ok {
		l = &policy.Lineage{}
		ls.m[ref] = l
	}
	ls.mu.Unlock()
	return l.Next(images)
}

// keep drops the lineages of the ECR repositories that the cycle whose
// listings are done did not list.
func (ls *lineages) keep(done *listings) {
	done.mu.Lock()
	defer done.mu.Unlock()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for ref := range ls.m {
		if _, listed := done.m[ref]; !listed {
			delete(ls.m, ref)
		}
	}
}

type listing struct {
	done chan struct{}
	l    policy.Listing
	err  error
}

func (l *listings) list(ctx context.Context, ref policy.ImageRef) (policy.Listing, error) {
	l.mu.Lock()
	e, ok := l.m[ref]
	if !ok {
		e = &listing{done: make(chan struct{})}
		l.m[ref] = e
		go func() {
			defer close(e.done)
			lctx, cancel := context.WithTimeout(l.ctx, l.timeout)
			defer cancel()
			var images []policy.Image
			if images, e.err = l.lister.List(lctx, ref); e.err == nil {
				e.l = l.lineages.next(ref, images)
			}
		}()
	}
	l.mu.Unlock()
	select {
	case <-e.done:
		return e.l, e.err
	case <-ctx.Done():
		return policy.Listing{}, fmt.Errorf("waiting for the listing of %s: %w", ref, ctx.Err())
	}
}
