package forge

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"code.gitea.io/sdk/gitea"
)

type giteaForge struct {
	apiURL, token string
	hc            *http.Client
	owner, repo   string
}

func newGitea(apiURL, owner, repo, token string, hc *http.Client) *giteaForge {
	return &giteaForge{apiURL: strings.TrimSuffix(apiURL, "/"), token: token, hc: hc, owner: owner, repo: repo}
}

// client is a client bound to ctx (the SDK takes the context per client).
func (g *giteaForge) client(ctx context.Context) (*gitea.Client, error) {
	return gitea.NewClient(g.apiURL, gitea.SetToken(g.token), gitea.SetHTTPClient(g.hc),
		gitea.SetContext(ctx), gitea.SetGiteaVersion("")) // no version request: every call says what fails
}

func (g *giteaForge) fail(op string, resp *gitea.Response, err error) error {
	var r *http.Response
	if resp != nil {
		r = resp.Response
	}
	return classify("gitea", g.owner+"/"+g.repo, op, r, err)
}

func (g *giteaForge) Pulls(ctx context.Context, head, base string) ([]PullRequest, error) {
	c, err := g.client(ctx)
	if err != nil {
		return nil, g.fail("listing pull requests", nil, err)
	}
	// Gitea's list has no head filter: it is read page by page, most
	// recently updated first, until MaxPulls of the butler's branch are
	// found or the pages end; a pull request from a fork (another
	// repository, whatever its branch is called) is never one of them.
	var out []PullRequest
	for page := 1; page <= maxPages && len(out) < MaxPulls; page++ {
		pulls, resp, err := c.ListRepoPullRequests(g.owner, g.repo, gitea.ListPullRequestsOptions{
			State: gitea.StateAll, Sort: "recentupdate", ListOptions: gitea.ListOptions{Page: page, PageSize: 50},
		})
		if err != nil {
			return nil, g.fail("listing pull requests", resp, err)
		}
		for _, p := range pulls {
			if p.Head == nil || p.Base == nil || p.Head.Ref != head || p.Base.Ref != base || p.Head.RepoID == 0 || p.Head.RepoID != p.Base.RepoID {
				continue
			}
			out = append(out, giteaPull(p))
		}
		if !morePages(resp, len(pulls)) {
			break
		}
	}
	slices.SortFunc(out, func(a, b PullRequest) int { return int(b.Number - a.Number) })
	if len(out) > MaxPulls {
		out = out[:MaxPulls]
	}
	return out, nil
}

// morePages says whether a Gitea list goes on past the page that held n
// items: its Link header names a next page. A server whose [api]
// MAX_RESPONSE_ITEMS is below the 50 asked for answers shorter pages, so a
// short page is not the last one by itself; a full page is taken to have
// a next one, Link header or not.
func morePages(resp *gitea.Response, n int) bool {
	if n == 0 || resp == nil {
		return false
	}
	return resp.NextPage > 0 || n >= 50
}

func giteaPull(p *gitea.PullRequest) PullRequest {
	out := PullRequest{Number: p.Index, URL: p.HTMLURL, Title: p.Title, Body: p.Body,
		Open: p.State == gitea.StateOpen, Merged: p.HasMerged || p.Merged != nil}
	if p.Poster != nil {
		out.Author = p.Poster.UserName
	}
	return out
}

func (g *giteaForge) Self(ctx context.Context) (string, error) {
	c, err := g.client(ctx)
	if err != nil {
		return "", g.fail("reading the token's user", nil, err)
	}
	u, resp, err := c.GetMyUserInfo()
	if err != nil {
		return "", g.fail("reading the token's user", resp, err)
	}
	return u.UserName, nil
}

func (g *giteaForge) Open(ctx context.Context, head, base, title, body string, labels []string) (PullRequest, error) {
	c, err := g.client(ctx)
	if err != nil {
		return PullRequest{}, g.fail("opening a pull request", nil, err)
	}
	var ids []int64
	if len(labels) > 0 {
		// Gitea takes label ids: look the names up.
		var all []*gitea.Label
		for page := 1; page <= maxPages; page++ {
			labels, resp, err := c.ListRepoLabels(g.owner, g.repo, gitea.ListLabelsOptions{ListOptions: gitea.ListOptions{Page: page, PageSize: 50}})
			if err != nil {
				return PullRequest{}, g.fail("listing labels", resp, err)
			}
			all = append(all, labels...)
			if !morePages(resp, len(labels)) {
				break
			}
		}
		for _, name := range labels {
			i := slices.IndexFunc(all, func(l *gitea.Label) bool { return l.Name == name })
			if i < 0 {
				return PullRequest{}, g.fail("labelling a pull request", nil, fmt.Errorf("the repository has no label %q: create it, or remove it from pullRequest.labels", name))
			}
			ids = append(ids, all[i].ID)
		}
	}
	p, resp, err := c.CreatePullRequest(g.owner, g.repo, gitea.CreatePullRequestOption{
		Head: head, Base: base, Title: title, Body: body, Labels: ids,
	})
	if err != nil {
		return PullRequest{}, g.fail("opening a pull request", resp, err)
	}
	return giteaPull(p), nil
}

func (g *giteaForge) Update(ctx context.Context, number int64, title, body string) error {
	c, err := g.client(ctx)
	if err != nil {
		return g.fail(fmt.Sprintf("updating pull request #%d", number), nil, err)
	}
	_, resp, err := c.EditPullRequest(g.owner, g.repo, number, gitea.EditPullRequestOption{Title: title, Body: &body})
	if err != nil {
		return g.fail(fmt.Sprintf("updating pull request #%d", number), resp, err)
	}
	return nil
}

func (g *giteaForge) AutoMerge(ctx context.Context, pr PullRequest, head, method string) (AutoMergeResult, error) {
	op := fmt.Sprintf("turning on auto-merge of pull request #%d", pr.Number)
	c, err := g.client(ctx)
	if err != nil {
		return AutoMergeResult{}, g.fail(op, nil, err)
	}
	// Gitea checks a pull request's mergeability, and takes in a pushed
	// head, in the background: until it did, it answers 405 "try again
	// later" or 409 "head out of date". Asked again a few times, then
	// left pending for the next cycle.
	wait := 500 * time.Millisecond
	for deadline := time.Now().Add(giteaSettle); ; wait = min(2*wait, 4*time.Second) {
		// merge_when_checks_succeed schedules the merge (201) while a
		// required check is pending, or merges at once (200) when none is.
		_, resp, err := c.MergePullRequest(g.owner, g.repo, pr.Number, gitea.MergePullRequestOption{
			Style: gitea.MergeStyle(method), HeadCommitId: head, MergeWhenChecksSucceed: true,
		})
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		settling := err != nil && (status == http.StatusMethodNotAllowed && strings.Contains(err.Error(), "try again later") ||
			status == http.StatusConflict && strings.Contains(err.Error(), "head out of date"))
		switch {
		case err == nil && status == http.StatusCreated:
			return AutoMergeResult{State: "enabled"}, nil
		case err == nil:
			return AutoMergeResult{State: "merged"}, nil
		case status == http.StatusConflict && strings.Contains(err.Error(), "already scheduled"):
			return AutoMergeResult{State: "enabled"}, nil
		case settling && time.Now().Add(wait).After(deadline):
			return AutoMergeResult{State: "pending", Reason: clip(err.Error())}, nil
		case settling:
			select {
			case <-ctx.Done():
				return AutoMergeResult{}, g.fail(op, resp, ctx.Err())
			case <-time.After(wait):
			}
			continue
		case status == http.StatusMethodNotAllowed || status == http.StatusConflict || status == http.StatusUnprocessableEntity:
			return AutoMergeResult{State: "refused", Reason: clip(err.Error())}, nil
		}
		return AutoMergeResult{}, g.fail(op, resp, err)
	}
}

// giteaSettle bounds how long AutoMerge waits for Gitea to take in a pull
// request before it leaves the request to the next cycle.
var giteaSettle = 30 * time.Second
