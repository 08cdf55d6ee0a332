package pullrequests

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagebutler/imagebutler/scanner"
)

// pushBranches clones the repository (over HTTP with the admin's token),
// makes each branch from main with a commit of its own by a person, and
// pushes them to remote (a clone URL without credentials) in one push.
func (e *prEnv) pushBranches(t *testing.T, remote string, branches ...string) {
	t.Helper()
	auth := func(u string) string { return strings.Replace(u, "http://", "http://"+e.g.User+":"+e.g.Token+"@", 1) }
	work := t.TempDir()
	gitOut(t, "", "clone", "--quiet", auth(e.g.CloneURL(e.name)), work)
	for _, b := range branches {
		gitOut(t, work, "checkout", "--quiet", "-B", b, "origin/main")
		os.WriteFile(filepath.Join(work, "NOTES.md"), []byte(b+"\n"), 0o644)
		gitOut(t, work, "add", "NOTES.md")
		gitOut(t, work, "commit", "--quiet", "-m", "note "+b)
	}
	gitOut(t, work, append([]string{"push", "--quiet", auth(remote)}, branches...)...)
}

// An outsider's pull requests from a branch of their fork named as the
// butler's, one closed with a forged hidden line (proposing the very tag
// the butler would choose), one open: neither passes for the butler's.
// The butler opens its own, proposes the tag, and touches neither.
func TestPullRequestFromAForkIsNotTheButlers(t *testing.T) {
	e := newPREnv(t, "fork-prs")
	ctx := context.Background()
	const outsider = "outsider"
	if err := e.g.API(ctx, http.MethodPost, "/admin/users", map[string]any{"username": outsider, "email": "outsider@example.org",
		"password": "Outsider-pass-123", "must_change_password": false}, nil); err != nil && !strings.Contains(err.Error(), "422") {
		t.Fatal(err)
	}
	if err := e.g.APIAs(ctx, outsider, http.MethodPost, "/repos/"+e.g.User+"/"+e.name+"/forks", map[string]any{}, nil); err != nil {
		t.Fatal(err)
	}
	e.pushBranches(t, e.g.URL+"/"+outsider+"/"+e.name+".git", "imagebutler/main")
	e.ecr.push("qa-sha-0000001")
	forged := "Update falcon-qa:my-policy-bartender to qa-sha-0000001\n\n<!-- imagebutler-set: falcon-qa:my-policy-bartender=qa-sha-0000001 -->\n"
	var closed, open giteaPull
	for _, p := range []*giteaPull{&closed, &open} {
		if err := e.g.APIAs(ctx, outsider, http.MethodPost, "/repos/"+e.g.User+"/"+e.name+"/pulls", map[string]any{
			"head": outsider + ":imagebutler/main", "base": "main", "title": "Update falcon-qa:my-policy-bartender to qa-sha-0000001", "body": forged,
		}, p); err != nil {
			t.Fatal(err)
		}
		if p == &closed {
			if err := e.g.APIAs(ctx, outsider, http.MethodPatch, fmt.Sprintf("/repos/%s/%s/pulls/%d", e.g.User, e.name, p.Number), map[string]string{"state": "closed"}, nil); err != nil {
				t.Fatal(err)
			}
		}
	}

	r := e.cycle(t)
	if r.Err != nil || r.PullRequest == nil || r.PullRequest.Action != "opened" || r.PullRequest.Number == closed.Number || r.PullRequest.Number == open.Number {
		t.Fatalf("cycle: err %v, pull request %+v; want the butler's own opened\n%s", r.Err, r.PullRequest, e.logs.String())
	}
	for _, m := range r.Markers {
		if m.State == scanner.MarkerHeld {
			t.Errorf("marker held by the fork's closed pull request: %+v", m)
		}
	}
	if !strings.Contains(e.file(t, "imagebutler/main", seedFile), ":qa-sha-0000001") {
		t.Errorf("the butler's own branch does not propose the tag")
	}
	for _, p := range e.pulls(t) {
		if p.Number == open.Number && p.Body != forged {
			t.Errorf("the outsider's open pull request was rewritten: %q", p.Body)
		}
	}
}

// Twelve newer pull requests of other branches push the butler's open one
// to the second page (the test Gitea answers pages of 10, as a server with
// a lowered [api] MAX_RESPONSE_ITEMS does), and do not hide it: the next
// cycle updates it (no second one, no 409).
func TestPullRequestFoundAmongMany(t *testing.T) {
	t.Parallel() // mostly waiting for Gitea: with the other slow waiters, after the rest
	e := newPREnv(t, "many-prs")
	ctx := context.Background()
	e.ecr.push("qa-sha-0000001")
	r := e.cycle(t)
	if r.Err != nil || r.PullRequest.Action != "opened" {
		t.Fatalf("first cycle: err %v, pull request %+v\n%s", r.Err, r.PullRequest, e.logs.String())
	}
	mine := r.PullRequest.Number
	var branches []string
	for i := range 12 {
		branches = append(branches, fmt.Sprintf("feature-%02d", i))
	}
	e.pushBranches(t, e.g.CloneURL(e.name), branches...)
	// Gitea takes a second or more per pull request it opens: two at once
	// (more, on a loaded machine, and its sqlite reports itself busy).
	start := time.Now()
	var wg sync.WaitGroup
	todo := make(chan string)
	errs := make(chan error, len(branches))
	for range 2 {
		wg.Go(func() {
			for b := range todo {
				errs <- e.g.API(ctx, http.MethodPost, "/repos/"+e.g.User+"/"+e.name+"/pulls", map[string]any{"head": b, "base": "main", "title": b}, nil)
			}
		})
	}
	for _, b := range branches {
		todo <- b
	}
	close(todo)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d pull requests made in %s", len(branches), time.Since(start))
	var first []giteaPull
	if err := e.g.API(ctx, http.MethodGet, "/repos/"+e.g.User+"/"+e.name+"/pulls?state=all&sort=recentupdate&page=1&limit=50", nil, &first); err != nil {
		t.Fatal(err)
	}
	if len(first) != 10 || slices.ContainsFunc(first, func(p giteaPull) bool { return p.Number == mine }) {
		t.Fatalf("the first page holds %d pull requests, the butler's #%d among them: the test does not reach a second page", len(first), mine)
	}
	e.ecr.push("qa-sha-0000002")
	start = time.Now()
	r = e.cycle(t)
	if r.Err != nil || r.PullRequest.Action != "updated" || r.PullRequest.Number != mine {
		t.Fatalf("cycle among %d newer pull requests: err %v, pull request %+v; want #%d updated", len(branches), r.Err, r.PullRequest, mine)
	}
}

// A collaborator amends the butler's commit on its branch (author stays
// the butler, committer becomes the person): the commit is theirs, and the
// butler leaves the branch and its pull request alone, saying so.
func TestPullRequestAmendedCommitIsLeftAlone(t *testing.T) {
	e := newPREnv(t, "amended")
	e.ecr.push("qa-sha-0000001")
	if r := e.cycle(t); r.Err != nil || r.PullRequest.Action != "opened" {
		t.Fatalf("first cycle: err %v, pull request %+v\n%s", r.Err, r.PullRequest, e.logs.String())
	}
	work := t.TempDir()
	remote := strings.Replace(e.g.CloneURL(e.name), "http://", "http://"+e.g.User+":"+e.g.Token+"@", 1)
	gitOut(t, "", "clone", "--quiet", "--branch", "imagebutler/main", remote, work)
	os.WriteFile(filepath.Join(work, "NOTES.md"), []byte("a fix folded into the butler's commit\n"), 0o644)
	gitOut(t, work, "add", "NOTES.md")
	gitOut(t, work, "commit", "--quiet", "--amend", "--no-edit") // testpeers.Git commits as A Person
	if author := gitOut(t, work, "log", "-1", "--format=%ae %ce"); author != butlerEmail+" person@example.com" {
		t.Fatalf("amended commit: author and committer %q", author)
	}
	gitOut(t, work, "push", "--quiet", "--force", "origin", "imagebutler/main")
	amended := gitOut(t, work, "rev-parse", "HEAD")

	e.ecr.push("qa-sha-0000002")
	r := e.cycle(t)
	if r.Err == nil || !strings.Contains(r.Err.Error(), "the butler did not make") || r.PullRequest.Action != "left alone" {
		t.Fatalf("cycle after the amend: err %v, pull request %+v", r.Err, r.PullRequest)
	}
	if got := e.file(t, "imagebutler/main", "NOTES.md"); got != "a fix folded into the butler's commit\n" {
		t.Errorf("the person's amended commit was overwritten (NOTES.md = %q)", got)
	}
	var branch struct {
		Commit struct {
			ID string `json:"id"`
		} `json:"commit"`
	}
	if err := e.g.API(context.Background(), http.MethodGet, "/repos/"+e.g.User+"/"+e.name+"/branches/imagebutler/main", nil, &branch); err != nil {
		t.Fatal(err)
	}
	if branch.Commit.ID != amended {
		t.Errorf("the branch moved from the amended commit %s to %s", amended, branch.Commit.ID)
	}
}
