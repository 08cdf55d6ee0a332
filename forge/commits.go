package forge

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/google/go-github/v84/github"

	"github.com/imagebutler/imagebutler/gitwriter"
)

// GitHubCommits makes the butler's commits through GitHub's Git Data API
// (commitMethod: api): blobs, a tree on the parent's, a commit, then the
// branch moved. The commit's author is git.author and its committer is left
// to GitHub, which takes the author's; GitHub signs a commit an App makes
// as its bot and shows it as verified. It is a gitwriter.CommitAPI.
//
// GitHub's ref update takes no expected old value: the branch is read
// first and must be at Publication.Old; then it is moved with force only
// where the butler replaces its own branch, else as a fast-forward, which
// GitHub refuses once anyone moved the branch elsewhere. Between the read
// and the update, only a branch moved back to an ancestor of the butler's
// parent could slip through.
type GitHubCommits struct {
	c           *github.Client
	owner, repo string
}

// NewGitHubCommits returns the commit API of owner/repo at apiURL (the
// REST root), authenticated with token, making requests with hc (nil: a
// client with a 30s timeout).
func NewGitHubCommits(apiURL, owner, repo, token string, hc *http.Client) (*GitHubCommits, error) {
	g, err := newGitHub(apiURL, owner, repo, token, withTimeout(hc))
	if err != nil {
		return nil, err
	}
	return &GitHubCommits{c: g.c, owner: owner, repo: repo}, nil
}

func (g *GitHubCommits) fail(op string, resp *github.Response, err error) error {
	var r *http.Response
	if resp != nil {
		r = resp.Response
	}
	return classify("github", g.owner+"/"+g.repo, op, r, err)
}

// Publish makes p's commit and moves p.Branch to it (gitwriter.CommitAPI).
func (g *GitHubCommits) Publish(ctx context.Context, p gitwriter.Publication) (plumbing.Hash, error) {
	ref, resp, err := g.c.Git.GetRef(ctx, g.owner, g.repo, "heads/"+p.Branch)
	head := ""
	switch {
	case err == nil:
		head = ref.GetObject().GetSHA()
	case resp == nil || resp.StatusCode != http.StatusNotFound:
		return plumbing.ZeroHash, g.fail("reading branch "+p.Branch, resp, err)
	}
	if want := hashOrEmpty(p.Old); head != want {
		return plumbing.ZeroHash, fmt.Errorf("github: branch %s of %s/%s is at %q, not %q as fetched: %w", p.Branch, g.owner, g.repo, head, want, gitwriter.ErrRejected)
	}
	var entries []*github.TreeEntry
	for _, f := range p.Files {
		content, encoding := base64.StdEncoding.EncodeToString(f.Content), "base64"
		blob, resp, err := g.c.Git.CreateBlob(ctx, g.owner, g.repo, github.Blob{Content: &content, Encoding: &encoding})
		if err != nil {
			return plumbing.ZeroHash, g.fail("creating the blob of "+f.Path, resp, err)
		}
		path, mode, kind, sha := f.Path, fmt.Sprintf("%06o", uint32(f.Mode)), "blob", blob.GetSHA()
		entries = append(entries, &github.TreeEntry{Path: &path, Mode: &mode, Type: &kind, SHA: &sha})
	}
	tree, resp, err := g.c.Git.CreateTree(ctx, g.owner, g.repo, p.BaseTree.String(), entries)
	if err != nil {
		return plumbing.ZeroHash, g.fail("creating the tree", resp, err)
	}
	if tree.GetSHA() != p.Tree.String() {
		return plumbing.ZeroHash, fmt.Errorf("github: %s/%s: tree %s, where the butler made %s: %w; nothing committed", g.owner, g.repo, tree.GetSHA(), p.Tree, gitwriter.ErrTreeMismatch)
	}
	when := p.Author.When
	commit, resp, err := g.c.Git.CreateCommit(ctx, g.owner, g.repo, github.Commit{
		Message: &p.Message,
		Tree:    &github.Tree{SHA: tree.SHA},
		Parents: []*github.Commit{{SHA: github.Ptr(p.Parent.String())}},
		// No committer: GitHub takes the author's, and signs what an App
		// makes as its own bot (git.author set to the App's bot identity).
		Author: &github.CommitAuthor{Name: &p.Author.Name, Email: &p.Author.Email, Date: &github.Timestamp{Time: when}},
	}, nil)
	if err != nil {
		return plumbing.ZeroHash, g.fail("creating the commit", resp, err)
	}
	made := plumbing.NewHash(commit.GetSHA())
	if made.IsZero() || len(commit.Parents) != 1 || commit.Parents[0].GetSHA() != p.Parent.String() {
		return plumbing.ZeroHash, g.fail("creating the commit", resp, fmt.Errorf("GitHub answered commit %q with parents %v, want one: %s", commit.GetSHA(), commit.Parents, p.Parent))
	}
	if p.Old.IsZero() {
		_, resp, err = g.c.Git.CreateRef(ctx, g.owner, g.repo, github.CreateRef{Ref: "refs/heads/" + p.Branch, SHA: made.String()})
	} else {
		_, resp, err = g.c.Git.UpdateRef(ctx, g.owner, g.repo, "heads/"+p.Branch, github.UpdateRef{SHA: made.String(), Force: github.Ptr(p.Replace)})
	}
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnprocessableEntity {
			// "Update is not a fast forward", "Reference already exists":
			// someone moved the branch.
			return plumbing.ZeroHash, fmt.Errorf("github: moving branch %s of %s/%s to %s: %w: %s", p.Branch, g.owner, g.repo, made, gitwriter.ErrRejected, clip(err.Error()))
		}
		return plumbing.ZeroHash, g.fail("moving branch "+p.Branch, resp, err)
	}
	return made, nil
}

func hashOrEmpty(h plumbing.Hash) string {
	if h.IsZero() {
		return ""
	}
	return h.String()
}

var _ gitwriter.CommitAPI = (*GitHubCommits)(nil)
