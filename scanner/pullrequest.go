package scanner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/forge"
	"github.com/imagebutler/imagebutler/gitwriter"
	"github.com/imagebutler/imagebutler/policy"
)

// HeldRejected is the hold of a value a person rejected by closing the
// butler's pull request without merging it.
const HeldRejected = "rejected"

// PullRequestStatus is what became of a repository's pull request this
// cycle, in pull-request mode.
type PullRequestStatus struct {
	Number int64  `json:"number,omitempty"`
	URL    string `json:"url,omitempty"`
	Branch string `json:"branch"`
	Base   string `json:"base"`
	// State is the pull request's: "open", "merged", "closed", or "" when
	// there is none.
	State string `json:"state,omitempty"`
	// Action is what the butler did: "opened", "updated", "unchanged",
	// "would open", "would update", "branch deleted", "left alone" (a
	// person pushed to the branch) or "".
	Action string `json:"action,omitempty"`
	Title  string `json:"title,omitempty"`
	// AutoMerge is what the forge said of auto-merge (pullRequest.autoMerge):
	// "enabled", "merged", "refused: <the forge's reason>", or "pending:
	// <reason>" (asked again next cycle).
	AutoMerge string `json:"autoMerge,omitempty"`
}

// setsLine is how a pull request's body records the values it proposes,
// hidden from the rendered page: a closed one names what was rejected. It
// is the body's last line, in exactly this form; anything like it in text
// the repository supplies is escaped (escapeSetsLines), so only the
// butler's own line can be read back.
var setsLine = regexp.MustCompile(`^<!-- imagebutler-set: ((?:[^\s=<>]+=[^\s<>]+ ?)*) -->$`)

// proposedSets reads the policy → tag pairs the last line of a pull
// request's body proposes.
func proposedSets(body string) map[string]string {
	body = strings.TrimRight(body, "\r\n")
	last := body[strings.LastIndexByte(body, '\n')+1:]
	m := setsLine.FindStringSubmatch(last)
	if m == nil {
		return nil
	}
	out := map[string]string{}
	for pair := range strings.FieldsSeq(m[1]) {
		if id, tag, ok := strings.Cut(pair, "="); ok {
			out[id] = tag
		}
	}
	return out
}

// escapeSetsLines makes every HTML comment opener in text (which holds
// repository text: object names, file names, tags) plain text, so that
// nothing in it can pass for the butler's hidden line or hide a part of the
// body from reviewers.
func escapeSetsLines(text string) string {
	return strings.ReplaceAll(text, "<!--", "&lt;!--")
}

// rejection is a value a closed pull request proposed.
type rejection struct {
	tag    string
	number int64
}

// rejections are the values of the butler's own pull requests (mine)
// closed without merging since the newest merged one, per policy the newest
// proposal.
func rejections(pulls []forge.PullRequest, mine func(forge.PullRequest) bool) map[string]rejection {
	out := map[string]rejection{}
	for _, p := range pulls { // newest first
		if p.Merged {
			break
		}
		if p.Open || proposedSets(p.Body) == nil || !mine(p) {
			continue
		}
		for id, tag := range proposedSets(p.Body) {
			if _, ok := out[id]; !ok {
				out[id] = rejection{tag, p.Number}
			}
		}
	}
	return out
}

// holdRejected holds the markers whose policy's choice does not rank above
// the value a closed pull request proposed for it (and the :digest markers
// of their policy in the same file).
func holdRejected(tree *gitwriter.Tree, chosen map[string]Choice, rejected map[string]rejection, held map[string]Held) {
	files := map[string]bool{}
	for _, m := range tree.Markers {
		r, ok := rejected[m.Policy]
		c, chosenOK := chosen[m.Policy]
		if !ok || !chosenOK || m.Setter == gitwriter.SetDigest || m.Setter == gitwriter.SetName {
			continue
		}
		if _, already := held[m.Location()]; already || CurrentTag(m) == c.Result.Tag || c.Result.Tag == "" {
			continue
		}
		if standing, _ := c.Policy.RankCurrent(c.Images, r.tag, c.Result); standing != policy.Same && standing != policy.Above {
			continue // a tag ranked above the rejected one (or that one is gone from ECR): propose it
		}
		held[m.Location()] = Held{HeldRejected, fmt.Sprintf("pull request #%d proposing %s for %s was closed without merging; waiting for a tag newer than %s (now %s)",
			r.number, r.tag, m.Policy, r.tag, c.Result.Tag)}
		files[m.Policy+"\x00"+m.File] = true
	}
	holdDigests(tree, files, HeldRejected, held)
}

// newForge makes the forge client of repo; tests replace it.
var newForge = func(repo config.Repository, token string) (forge.Client, error) {
	return forge.New(repo, token, nil)
}

// propose is one cycle of a repository in pull-request mode: the working
// copy follows the target branch, the butler's commit is made on its head
// and pushed to the butler's branch (replacing its earlier one with a
// lease), and one pull request is opened or updated from it. The target
// branch is never pushed to.
func (s *Scanner) propose(ctx context.Context, co *gitwriter.Checkout, k *keptCopy, repo config.Repository, ls *listings, log *slog.Logger) RepoResult {
	var r RepoResult
	pr := repo.PullRequest
	st := &PullRequestStatus{Branch: pr.Branch, Base: repo.Branch}
	r.PullRequest = st
	client, err := newForge(repo, repo.Auth.Token) // this cycle's (credentials)
	if err != nil {
		r.Err = err
		return r
	}
	pulls, err := client.Pulls(ctx, pr.Branch, repo.Branch)
	if err != nil {
		r.Err = err
		return r
	}
	var open *forge.PullRequest
	if len(pulls) > 0 {
		newest := pulls[0]
		st.Number, st.URL, st.State, st.Title = newest.Number, newest.URL, newest.State(), newest.Title
		if newest.Open {
			open = &pulls[0]
		}
	}
	s.pullEvents(repo.Name(), pulls)
	remote, err := co.RemoteBranch(ctx, pr.Branch)
	if err != nil {
		r.Err = err
		return r
	}
	ahead := 0
	if !remote.IsZero() {
		foreign, n, err := co.Foreign(remote, s.cfg.Git.Author.Email, gitwriter.MaxForeignLook)
		if err != nil {
			r.Err = err
			return r
		}
		ahead = n
		if len(foreign) > 0 {
			c := foreign[0]
			st.Action = "left alone"
			r.Err = fmt.Errorf("branch %s has %d commit(s) the butler did not make (newest %s by %s <%s>): the butler leaves it and its pull request alone; merge or close the pull request and delete the branch to resume",
				pr.Branch, len(foreign), c.Hash.String()[:12], c.Author.Name, c.Author.Email)
			return r
		}
	}
	r.Head = co.Head.String()
	// The butler's own pull requests are the ones its token opened; the
	// forge is asked who that is only when a closed one could hold a value.
	var (
		self     string
		selfRead bool
	)
	mine := func(p forge.PullRequest) bool {
		if !selfRead {
			selfRead = true
			var err error
			if self, err = s.self(ctx, client, repo); err != nil {
				log.Warn("the forge did not say whose token this is; pull requests from the butler's branch in this repository count as the butler's", "err", Clip(err.Error()))
			}
		}
		return self == "" || strings.EqualFold(p.Author, self)
	}
	pass, err := s.passWith(ctx, co, k, repo, ls, rejections(pulls, mine))
	r.Changes, r.Problems, r.Policies, r.Markers = pass.changes, pass.problems, pass.policies, pass.markers
	if err != nil {
		r.Err = err
		return r
	}
	if len(pass.changes) == 0 {
		r.Err = pass.failed
		merged := ahead == 0 || len(pulls) > 0 && pulls[0].Merged // merged as is, or squashed or rebased
		if !remote.IsZero() && merged && open == nil && !s.dryRun {
			// Merged, and the forge kept the branch (every commit on it is
			// the butler's, checked above): the butler removes it.
			if err := s.fence(repo); err != nil {
				r.Err = errors.Join(r.Err, fmt.Errorf("branch %s not deleted: %w", pr.Branch, err))
				return r
			}
			if err := co.DeleteBranch(ctx, pr.Branch, remote); err != nil {
				r.Err = errors.Join(r.Err, err)
				return r
			}
			st.Action = "branch deleted"
		}
		return r
	}
	h, msg, err := s.commit(co, repo, pass)
	if err != nil {
		r.Err = err
		return r
	}
	title, body, err := pullText(pr, repo.Name(), pass.changes, msg, pass.set)
	if err != nil {
		r.Err = err
		return r
	}
	r.Commit = h.String()
	st.Title = title
	if s.dryRun {
		if r.Diff, err = co.Diff(h); err != nil {
			r.Err = err
			return r
		}
		st.Action = "would open"
		if open != nil {
			st.Action = "would update"
		}
		r.Err = errors.Join(r.Err, pass.failed)
		return r
	}
	if err := s.fence(repo); err != nil {
		r.Commit = ""
		r.Err = fmt.Errorf("not pushed: %w", err)
		return r
	}
	pushed := false
	if remote.IsZero() || !co.Proposes(remote, h) {
		if err := co.PushTo(ctx, pr.Branch, h, remote); err != nil {
			r.Commit = ""
			r.Err = err
			return r
		}
		pushed = true
		h = co.Head // the forge's own commit, made through its API, or h
		r.Commit = h.String()
	}
	head := h
	if !pushed {
		head = remote // the butler's commit already on its branch
	}
	if err := s.fence(repo); err != nil { // the push may have been long
		r.Err = fmt.Errorf("pull request not opened or updated: %w", err)
		return r
	}
	switch {
	case open == nil:
		opened, err := client.Open(ctx, pr.Branch, repo.Branch, title, body, pr.Labels)
		if opened.Number != 0 {
			st.Number, st.URL, st.State = opened.Number, opened.URL, "open"
			st.Action = "opened"
			s.pullEvent(repo.Name(), "opened")
			s.rememberPull(repo.Name(), opened.Number, "open")
			open = &opened
		}
		if err != nil {
			r.Err = err
			return r
		}
	case pushed || open.Title != title || open.Body != body:
		if err := client.Update(ctx, open.Number, title, body); err != nil {
			r.Err = err
			return r
		}
		st.Action = "updated"
		s.pullEvent(repo.Name(), "updated")
	default:
		st.Action = "unchanged"
	}
	if !pushed {
		r.Commit = "" // nothing was pushed this cycle
	}
	log.Info("pull request "+st.Action, "number", st.Number, "url", st.URL, "branch", pr.Branch)
	r.Err = pass.failed
	if pr.AutoMerge != nil && open != nil {
		if err := s.fence(repo); err != nil {
			r.Err = errors.Join(r.Err, fmt.Errorf("auto-merge not asked: %w", err))
			return r
		}
		r.Err = errors.Join(r.Err, s.autoMerge(ctx, client, repo, *open, head, st, log))
	}
	return r
}

// autoMerged is what the forge said of auto-merge of a pull request whose
// head was head.
type autoMerged struct {
	head   plumbing.Hash
	result forge.AutoMergeResult
}

// autoMerge turns on the forge's auto-merge of the butler's pull request
// open, whose head is the butler's commit head: once per pull request and
// head (a new commit is asked again). A refusal is said once, in the log
// and /status, and leaves the pull request open for a person; a failed
// call is the repository's error, asked again next cycle.
func (s *Scanner) autoMerge(ctx context.Context, client forge.Client, repo config.Repository, open forge.PullRequest, head plumbing.Hash, st *PullRequestStatus, log *slog.Logger) error {
	key := fmt.Sprintf("%s\x00%d", repo.Name(), open.Number)
	s.pullMu.Lock()
	seen, asked := s.autoMerges[key]
	s.pullMu.Unlock()
	got := seen.result
	if !asked || seen.head != head {
		var err error
		if got, err = client.AutoMerge(ctx, open, head.String(), repo.PullRequest.AutoMerge.Method); err != nil {
			return err
		}
		if got.State != "pending" { // pending: asked again next cycle
			s.pullMu.Lock()
			if s.autoMerges == nil {
				s.autoMerges = map[string]autoMerged{}
			}
			s.autoMerges[key] = autoMerged{head, got}
			s.pullMu.Unlock()
		}
		switch got.State {
		case "pending":
			log.Info("the forge is still taking the pull request in; auto-merge is asked again next cycle", "number", open.Number, "reason", got.Reason)
		case "refused":
			log.Warn("the forge refused to merge the pull request by itself; it stays open for a person", "number", open.Number, "url", open.URL, "reason", got.Reason)
		default:
			log.Info("pull request auto-merge "+got.State, "number", open.Number, "url", open.URL, "method", repo.PullRequest.AutoMerge.Method)
		}
	}
	st.AutoMerge = got.State
	if got.State == "refused" || got.State == "pending" {
		st.AutoMerge += ": " + got.Reason
	}
	return nil
}

// pullText renders a pull request's title and body: the templates, else the
// commit message's subject and the rest of it; the body ends with the
// hidden line that records the proposed values (what a closed pull
// request rejected).
func pullText(pr *config.PullRequest, repoName string, changes []gitwriter.Change, msg string, set map[string]string) (title, body string, err error) {
	subject, rest, _ := strings.Cut(msg, "\n")
	title, body = subject, strings.TrimSpace(rest)
	if pr.TitleTemplate != nil {
		if title, err = gitwriter.Message(pr.TitleTemplate, repoName, changes); err != nil {
			return "", "", fmt.Errorf("pullRequest.title: %w", err)
		}
		title = strings.TrimSpace(title)
	}
	if pr.BodyTemplate != nil {
		if body, err = gitwriter.Message(pr.BodyTemplate, repoName, changes); err != nil {
			return "", "", fmt.Errorf("pullRequest.body: %w", err)
		}
	}
	body = escapeSetsLines(body)
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	pairs := make([]string, len(ids))
	for i, id := range ids {
		pairs[i] = id + "=" + set[id]
	}
	body = strings.TrimRight(body, "\n") + "\n\n<!-- imagebutler-set: " + strings.Join(pairs, " ") + " -->\n"
	return title, body, nil
}

// pullEvents counts the pull requests seen merged or closed since the last
// cycle saw them open.
func (s *Scanner) pullEvents(repo string, pulls []forge.PullRequest) {
	for _, p := range pulls {
		was := s.rememberPull(repo, p.Number, p.State())
		if was == "open" && p.State() != "open" {
			s.pullEvent(repo, p.State())
		}
	}
}

// rememberPull records pull request number's state and returns the one
// recorded before ("" when none).
func (s *Scanner) rememberPull(repo string, number int64, state string) string {
	s.pullMu.Lock()
	defer s.pullMu.Unlock()
	if s.pulls == nil {
		s.pulls = map[string]map[int64]string{}
	}
	if s.pulls[repo] == nil {
		s.pulls[repo] = map[int64]string{}
	}
	was := s.pulls[repo][number]
	s.pulls[repo][number] = state
	return was
}

func (s *Scanner) pullEvent(repo, event string) {
	if s.metrics != nil {
		s.metrics.pullRequests.WithLabelValues(repo, event).Inc()
	}
}
