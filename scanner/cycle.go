package scanner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/imagebutler/imagebutler/config"
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

	memoMu sync.Mutex
	memos  map[string]*memo // by ECR repository and policy fingerprint, across cycles
	cycle  int
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

// New returns a Scanner for cfg that reads ECR through lister and logs to log.
func New(cfg *config.Config, lister Lister, log *slog.Logger, opts ...Option) *Scanner {
	s := &Scanner{cfg: cfg, lister: lister, log: log, backoff: jitteredBackoff, memos: map[string]*memo{}}
	for _, o := range opts {
		o(s)
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
}

// Summary is the one-line report of the result.
func (r RepoResult) Summary() string {
	var b strings.Builder
	if r.Err != nil {
		fmt.Fprintf(&b, "FAIL %s: %v", r.Repository, r.Err)
	} else if r.Commit != "" {
		fmt.Fprintf(&b, "ok   %s: %d change(s), pushed %s", r.Repository, len(r.Changes), r.Commit[:min(len(r.Commit), 12)])
	} else {
		fmt.Fprintf(&b, "ok   %s: up to date", r.Repository)
	}
	if len(r.Problems) > 0 {
		fmt.Fprintf(&b, " (%d problem(s))", len(r.Problems))
	}
	return b.String()
}

// RunOnce runs one cycle over every repository and returns their results in
// configuration order. One failing repository never stops the others.
func (s *Scanner) RunOnce(ctx context.Context) []RepoResult {
	listings := &listings{lister: s.lister, m: map[policy.ImageRef]*listing{}}
	s.memoMu.Lock()
	s.cycle++
	s.memoMu.Unlock()
	results := make([]RepoResult, len(s.cfg.Repositories))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i, repo := range s.cfg.Repositories {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			start := time.Now()
			log := s.log.With("repo", repo.Name())
			r := s.repository(ctx, repo, listings, log)
			r.Repository, r.Duration = repo.Name(), time.Since(start)
			for _, p := range r.Problems {
				log.Warn(p.Error())
			}
			if r.Err != nil {
				log.Error("repository failed", "err", r.Err.Error(), "duration", r.Duration)
			} else {
				log.Info("repository done", "commit", r.Commit, "changes", len(r.Changes), "duration", r.Duration)
			}
			results[i] = r
		}()
	}
	wg.Wait()
	s.memoMu.Lock()
	for k, m := range s.memos {
		if m.lastUsed != s.cycle {
			delete(s.memos, k) // no policy uses it any more
		}
	}
	s.memoMu.Unlock()
	return results
}

// selectTag runs p's selection with the memo kept for its ECR repository
// and fingerprint, so tags seen in earlier cycles cost a lookup.
func (s *Scanner) selectTag(p *policy.Policy, images []policy.Image) policy.Result {
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
	return p.SelectMemo(images, m.m)
}

// WorkDir is the working copy directory of repo under stateDir.
func WorkDir(stateDir string, repo config.Repository) string {
	sum := sha256.Sum256([]byte(repo.URL + "\x00" + repo.PushBranch))
	base := strings.TrimSuffix(path.Base(strings.TrimRight(config.Redact(repo.URL), "/")), ".git")
	base = unsafeChars.ReplaceAllString(base, "_")
	return filepath.Join(stateDir, base+"-"+hex.EncodeToString(sum[:6]))
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func (s *Scanner) repository(ctx context.Context, repo config.Repository, ls *listings, log *slog.Logger) RepoResult {
	var r RepoResult
	co, err := gitwriter.Open(ctx, WorkDir(s.cfg.StateDir, repo), repo, log)
	if err != nil {
		r.Err = err
		return r
	}
	for attempt := 1; ; attempt++ {
		r.Head = co.Head.String()
		pass, err := s.pass(ctx, co, repo, ls)
		r.Changes, r.Problems = pass.changes, pass.problems
		if err != nil {
			r.Err = err
			return r
		}
		if len(pass.changes) == 0 {
			r.Err = pass.failed
			return r
		}
		msg, err := gitwriter.Message(s.cfg.CommitTemplate, repo.Name(), pass.changes)
		if err != nil {
			r.Err = err
			return r
		}
		var key *openpgp.Entity
		if s.cfg.Git.SigningKeyFile != "" {
			if key, err = gitwriter.LoadSigningKey(s.cfg.Git.SigningKeyFile, s.cfg.Git.SigningKeyPassphraseFile); err != nil {
				r.Err = err
				return r
			}
		}
		h, err := co.Commit(pass.files, msg, s.cfg.Git.Author, key)
		if err != nil {
			r.Err = err
			return r
		}
		err = co.Push(ctx)
		if err == nil {
			r.Commit, r.Err = h.String(), pass.failed
			return r
		}
		if !errors.Is(err, gitwriter.ErrRejected) || attempt == MaxPushAttempts {
			r.Err = fmt.Errorf("attempt %d of %d: %w", attempt, MaxPushAttempts, err)
			return r
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

type passResult struct {
	changes  []gitwriter.Change
	files    []string
	problems []error
	failed   error // ECR listing failures: the repository fails, but resolved policies still apply
}

// pass discovers, resolves and rewrites the working copy once.
func (s *Scanner) pass(ctx context.Context, co *gitwriter.Checkout, repo config.Repository, ls *listings) (passResult, error) {
	var out passResult
	tree, err := gitwriter.Discover(co.Dir, repo.Paths, repo.Namespace)
	if err != nil {
		return out, err
	}
	defer tree.Close()
	out.problems = append(out.problems, tree.Problems...)

	policies, problems := FindPolicies(tree, s.cfg.AWS.Region)
	out.problems = append(out.problems, problems...)

	ids := make([]string, 0, len(policies))
	for id := range policies {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	resolved := map[string]gitwriter.Resolution{}
	var listErrs []error
	for _, id := range ids {
		p := policies[id]
		if p.Err != nil {
			resolved[id] = gitwriter.Resolution{Err: p.Err}
			continue
		}
		images, err := ls.list(ctx, p.Image)
		if err != nil {
			resolved[id] = gitwriter.Resolution{Err: err}
			listErrs = append(listErrs, fmt.Errorf("policy %s: %w", id, err))
			continue
		}
		res := s.selectTag(p.Policy, images)
		if !res.OK() {
			resolved[id] = gitwriter.Resolution{Err: errors.New(res.Reason())}
			out.problems = append(out.problems, fmt.Errorf("%s: policy %s: %s", p.Key, id, res.Reason()))
			continue
		}
		resolved[id] = gitwriter.Resolution{Image: p.Image.Name(), Tag: res.Tag, Digest: res.Digest}
	}
	if ctx.Err() != nil {
		return out, ctx.Err()
	}
	out.failed = errors.Join(listErrs...)

	changes, problems := tree.Apply(resolved)
	out.changes = changes
	out.problems = append(out.problems, problems...)
	seen := map[string]bool{}
	for _, c := range changes {
		if !seen[c.File] {
			seen[c.File] = true
			out.files = append(out.files, c.File)
		}
	}
	return out, nil
}

// listings lists each ECR repository at most once per cycle, whichever
// repositories and policies ask for it.
type listings struct {
	lister Lister
	mu     sync.Mutex
	m      map[policy.ImageRef]*listing
}

type listing struct {
	once   sync.Once
	images []policy.Image
	err    error
}

func (l *listings) list(ctx context.Context, ref policy.ImageRef) ([]policy.Image, error) {
	l.mu.Lock()
	e, ok := l.m[ref]
	if !ok {
		e = &listing{}
		l.m[ref] = e
	}
	l.mu.Unlock()
	e.once.Do(func() { e.images, e.err = l.lister.List(ctx, ref) })
	return e.images, e.err
}
