package scanner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/gate"
	"github.com/imagebutler/imagebutler/gitwriter"
	"github.com/imagebutler/imagebutler/policy"
)

// The pass: select each policy's tag, hold what must not move, rewrite the
// markers, and commit; polls, push events and pull requests share it.

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
