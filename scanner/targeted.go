package scanner

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/policy"
)

// Push is an image pushed to ECR, as an event announced it.
type Push struct {
	Ref    policy.ImageRef
	Tag    string // may be empty: a push by digest alone
	Digest string
	Time   time.Time // when ECR says the push happened; zero when unknown
}

// Describer looks up pushed images without listing the whole repository.
// *ECR is one; a Lister that is not one makes targeted passes list in full.
type Describer interface {
	Describe(ctx context.Context, ref policy.ImageRef, ids []ImageID) ([]policy.Image, error)
}

var _ Describer = (*ECR)(nil)

// known keeps, between cycles, what targeted passes need: the last listing
// of each ECR repository and which git repositories use which. It is only
// kept when events are configured (WithEvents), so a poller holds no
// listing between cycles.
type known struct {
	mu       sync.Mutex
	listings map[policy.ImageRef]policy.Listing // from the last poll, with the pushes merged since
	merged   map[policy.ImageRef]map[ImageID]bool
	uses     map[string][]policy.ImageRef // git repository name → ECR repositories its last pass used
}

// WithEvents keeps listings and policy use between cycles, for Pass.
func WithEvents() Option {
	return func(s *Scanner) {
		s.known = &known{listings: map[policy.ImageRef]policy.Listing{}, merged: map[policy.ImageRef]map[ImageID]bool{}, uses: map[string][]policy.ImageRef{}}
	}
}

// used records the ECR repositories repo's pass used.
func (k *known) used(repo string, refs []policy.ImageRef) {
	if k == nil {
		return
	}
	k.mu.Lock()
	k.uses[repo] = refs
	k.mu.Unlock()
}

// polled keeps the listings a full cycle made, replacing the ones kept.
func (k *known) polled(ls *listings) {
	if k == nil {
		return
	}
	ls.mu.Lock()
	fresh := map[policy.ImageRef]policy.Listing{}
	for ref, e := range ls.m {
		select {
		case <-e.done:
			if e.err == nil {
				fresh[ref] = e.l
			}
		default: // still running past the cycle: not kept
		}
	}
	ls.mu.Unlock()
	k.mu.Lock()
	k.listings = fresh
	k.merged = map[policy.ImageRef]map[ImageID]bool{}
	k.mu.Unlock()
}

// Users returns the names of the git repositories whose policies used the
// ECR repository of ref (its images or its charts) in their last pass,
// sorted; nil before the first cycle, or without WithEvents.
func (s *Scanner) Users(ref policy.ImageRef) []string {
	if s.known == nil {
		return nil
	}
	s.known.mu.Lock()
	defer s.known.mu.Unlock()
	var names []string
	for name, refs := range s.known.uses {
		if slices.ContainsFunc(refs, func(r policy.ImageRef) bool { return r.Repo() == ref.Repo() }) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// Repository returns the configured repository named name.
func (s *Scanner) Repository(name string) (config.Repository, bool) {
	for _, r := range s.cfg.Repositories {
		if r.Name() == name {
			return r, true
		}
	}
	return config.Repository{}, false
}

// Pass runs a targeted pass over the repository named repo: the same sync,
// select, rewrite, commit and push as a cycle, under the same lock (never at
// once with a cycle's work on it). Listings come from the last poll, with
// pushes merged in: each pushed image is looked up alone (one DescribeImages
// call per ECR repository, once however many repositories use it) rather
// than the repository listed again. An ECR repository with no kept listing
// is listed in full. The repository's status and metrics are updated as by
// a cycle.
func (s *Scanner) Pass(ctx context.Context, repo string, pushes []Push) (RepoResult, error) {
	return s.targeted(ctx, repo, pushes, false)
}

// Poll runs a pass over the repository named repo as a cycle would: its
// ECR repositories listed afresh rather than taken from the last poll (a
// replica that just took the repository's shard may hold an old listing,
// or none). The listings it makes are kept for the passes after it.
func (s *Scanner) Poll(ctx context.Context, repo string) (RepoResult, error) {
	return s.targeted(ctx, repo, nil, true)
}

func (s *Scanner) targeted(ctx context.Context, repo string, pushes []Push, fresh bool) (RepoResult, error) {
	r, ok := s.Repository(repo)
	if !ok {
		return RepoResult{}, fmt.Errorf("no configured repository is named %s", repo)
	}
	end, ok := s.begin(r)
	if !ok {
		return RepoResult{}, fmt.Errorf("%s: %w", repo, ErrNotHeld)
	}
	defer end()
	ls := &listings{ctx: ctx, timeout: s.repoTimeout(r), lister: s.lister, metrics: s.metrics, lineages: &s.lineages, m: map[policy.ImageRef]*listing{}}
	for _, p := range pushes {
		if p.Digest != "" { // a scan or a signature may have come with it: ask again
			s.checker.Forget(p.Ref.Repo(), p.Digest)
		}
	}
	if s.known != nil && !fresh {
		if err := s.mergePushes(ctx, pushes); err != nil {
			s.log.Warn("looking up pushed images failed; their ECR repositories are listed in full", "err", Clip(err.Error()))
		}
		s.known.mu.Lock()
		for ref, l := range s.known.listings {
			e := &listing{done: make(chan struct{}), l: l}
			close(e.done)
			ls.m[ref] = e
		}
		s.known.mu.Unlock()
	}
	kept := map[policy.ImageRef]bool{} // listings the pass starts with
	for ref := range ls.m {
		kept[ref] = true
	}
	res := s.runRepository(ctx, r, ls)
	if s.known != nil {
		// Listings the pass had to make are kept for the next one.
		ls.mu.Lock()
		s.known.mu.Lock()
		for ref, e := range ls.m {
			if kept[ref] {
				continue
			}
			select {
			case <-e.done:
				if e.err == nil {
					s.known.listings[ref] = e.l
				}
			default:
			}
		}
		s.known.mu.Unlock()
		ls.mu.Unlock()
	}
	s.recordOne(res)
	return res, nil
}

// mergePushes merges pushes into the kept listings, one DescribeImages call
// per ECR repository for the pushes not merged yet. A repository with no
// kept listing is left for a full listing.
func (s *Scanner) mergePushes(ctx context.Context, pushes []Push) error {
	d, ok := s.lister.(Describer)
	if !ok {
		s.known.mu.Lock()
		for _, p := range pushes {
			charts := p.Ref.Repo()
			charts.Charts = true
			delete(s.known.listings, p.Ref.Repo()) // listed in full by the pass
			delete(s.known.listings, charts)
		}
		s.known.mu.Unlock()
		return nil
	}
	byRef := map[policy.ImageRef][]ImageID{}
	s.known.mu.Lock()
	for _, p := range pushes {
		id := ImageID{Tag: p.Tag, Digest: p.Digest}
		// A push may be an image or a chart: merged into whichever
		// listings of its repository are kept (Describe tells them apart).
		for _, charts := range []bool{false, true} {
			ref := p.Ref.Repo()
			ref.Charts = charts
			if _, kept := s.known.listings[ref]; !kept || s.known.merged[ref][id] || slices.Contains(byRef[ref], id) {
				continue
			}
			byRef[ref] = append(byRef[ref], id)
		}
	}
	s.known.mu.Unlock()
	var errs []error
	for ref, ids := range byRef {
		for chunk := range slices.Chunk(ids, 100) {
			images, err := d.Describe(ctx, ref, chunk)
			if err != nil {
				s.known.mu.Lock()
				delete(s.known.listings, ref) // listed in full instead
				s.known.mu.Unlock()
				errs = append(errs, err)
				break
			}
			s.known.mu.Lock()
			if old, kept := s.known.listings[ref]; kept {
				s.known.listings[ref] = s.lineages.next(ref, Merge(old.Images, images))
				if s.known.merged[ref] == nil {
					s.known.merged[ref] = map[ImageID]bool{}
				}
				for _, id := range chunk {
					s.known.merged[ref][id] = true
				}
			}
			s.known.mu.Unlock()
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d ECR repositories: %w", len(errs), errs[0])
	}
	return nil
}

// Merge returns listing with images merged in, oldest first as listings
// are: an image already there (by digest) takes the tags images gives it,
// a tag moves to the image that now holds it, a new image is inserted by
// push time. listing is not modified.
func Merge(listing, images []policy.Image) []policy.Image {
	if len(images) == 0 {
		return listing
	}
	moved, described := map[string]bool{}, map[string]bool{}
	for _, img := range images {
		described[img.Digest] = true
		for _, t := range img.Tags {
			moved[t] = true
		}
	}
	isMoved := func(t string) bool { return moved[t] }
	out := make([]policy.Image, 0, len(listing)+len(images))
	for _, img := range listing {
		if described[img.Digest] {
			continue // inserted below, as described
		}
		if slices.ContainsFunc(img.Tags, isMoved) {
			if img.Tags = slices.DeleteFunc(slices.Clone(img.Tags), isMoved); len(img.Tags) == 0 {
				continue // its last tag moved
			}
		}
		out = append(out, img)
	}
	for _, img := range images {
		at, _ := slices.BinarySearchFunc(out, img, OldestFirst)
		out = slices.Insert(out, at, img)
	}
	return out
}

// repoTimeout is repo's timeout: its own, else repositoryTimeout.
func (s *Scanner) repoTimeout(repo config.Repository) time.Duration {
	timeout := time.Duration(repo.Timeout)
	if timeout <= 0 {
		timeout = time.Duration(s.cfg.RepositoryTimeout)
	}
	if timeout <= 0 {
		timeout = config.DefaultRepositoryTimeout
	}
	return timeout
}

// lock returns the mutex of the repository whose working copy is named
// name: a cycle and a targeted pass never work on one working copy at once.
func (s *Scanner) lock(name string) *sync.Mutex {
	s.repoMu.Lock()
	defer s.repoMu.Unlock()
	if s.repoLocks == nil {
		s.repoLocks = map[string]*sync.Mutex{}
	}
	m, ok := s.repoLocks[name]
	if !ok {
		m = &sync.Mutex{}
		s.repoLocks[name] = m
	}
	return m
}

// recordOne updates the status and metrics of the one repository a
// targeted pass worked on.
func (s *Scanner) recordOne(r RepoResult) {
	now := time.Now()
	s.metrics.repository(now, r)
	rs := r.status(now, s.cfg.MaxProblems)
	s.setShard(&rs)
	s.statusMu.Lock()
	rs.carry(s.status.Repositories)
	s.statusMu.Unlock()
	for _, f := range s.observers {
		f(rs)
	}
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	for i, old := range s.status.Repositories {
		if old.Name == r.Repository {
			s.status.Repositories[i] = rs
			return
		}
	}
	s.status.Repositories = append(s.status.Repositories, rs)
}
