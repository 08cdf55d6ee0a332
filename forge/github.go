package forge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-github/v84/github"
)

type gitHub struct {
	c           *github.Client
	owner, repo string
}

func newGitHub(apiURL, owner, repo, token string, hc *http.Client) (*gitHub, error) {
	c := github.NewClient(hc).WithAuthToken(token)
	base, err := url.Parse(apiURL)
	if err != nil {
		return nil, fmt.Errorf("pullRequest.apiURL: %w", err)
	}
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/"
	}
	c.BaseURL = base
	return &gitHub{c: c, owner: owner, repo: repo}, nil
}

func (g *gitHub) fail(op string, resp *github.Response, err error) error {
	var r *http.Response
	if resp != nil {
		r = resp.Response
	}
	return classify("github", g.owner+"/"+g.repo, op, r, err)
}

func (g *gitHub) Pulls(ctx context.Context, head, base string) ([]PullRequest, error) {
	// The head filter is the owner's branch: a fork in the same account
	// (another repository) still matches it, and is dropped below.
	opts := &github.PullRequestListOptions{
		State: "all", Head: g.owner + ":" + head, Base: base, Sort: "created", Direction: "desc",
		ListOptions: github.ListOptions{PerPage: 100},
	}
	var out []PullRequest
	for range maxPages {
		pulls, resp, err := g.c.PullRequests.List(ctx, g.owner, g.repo, opts)
		if err != nil {
			return nil, g.fail("listing pull requests", resp, err)
		}
		for _, p := range pulls {
			headRepo, baseRepo := p.GetHead().GetRepo().GetID(), p.GetBase().GetRepo().GetID()
			if p.GetHead().GetRef() != head || p.GetBase().GetRef() != base || headRepo == 0 || headRepo != baseRepo {
				continue
			}
			out = append(out, gitHubPull(p))
		}
		if len(out) >= MaxPulls || resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return out[:min(len(out), MaxPulls)], nil
}

func gitHubPull(p *github.PullRequest) PullRequest {
	return PullRequest{Number: int64(p.GetNumber()), URL: p.GetHTMLURL(), Title: p.GetTitle(), Body: p.GetBody(),
		Open: p.GetState() == "open", Merged: p.MergedAt != nil || p.GetMerged(), Author: p.GetUser().GetLogin(), NodeID: p.GetNodeID()}
}

func (g *gitHub) Self(ctx context.Context) (string, error) {
	u, resp, err := g.c.Users.Get(ctx, "")
	if err != nil {
		return "", g.fail("reading the token's user", resp, err)
	}
	return u.GetLogin(), nil
}

func (g *gitHub) Open(ctx context.Context, head, base, title, body string, labels []string) (PullRequest, error) {
	p, resp, err := g.c.PullRequests.Create(ctx, g.owner, g.repo, &github.NewPullRequest{
		Title: &title, Head: &head, Base: &base, Body: &body,
	})
	if err != nil {
		return PullRequest{}, g.fail("opening a pull request", resp, err)
	}
	out := gitHubPull(p)
	if len(labels) > 0 {
		if _, resp, err := g.c.Issues.AddLabelsToIssue(ctx, g.owner, g.repo, int(out.Number), labels); err != nil {
			return out, g.fail(fmt.Sprintf("labelling pull request #%d", out.Number), resp, err)
		}
	}
	return out, nil
}

func (g *gitHub) Update(ctx context.Context, number int64, title, body string) error {
	_, resp, err := g.c.PullRequests.Edit(ctx, g.owner, g.repo, int(number), &github.PullRequest{Title: &title, Body: &body})
	if err != nil {
		return g.fail(fmt.Sprintf("updating pull request #%d", number), resp, err)
	}
	return nil
}

// graphQLURL is the GraphQL endpoint beside the REST API at base:
// https://api.github.com/graphql, or https://HOST/api/graphql on GitHub
// Enterprise Server (whose REST root is https://HOST/api/v3/).
func graphQLURL(base *url.URL) string {
	u := *base
	if p, ok := strings.CutSuffix(u.Path, "/api/v3/"); ok {
		u.Path = p + "/api/graphql"
	} else {
		u.Path += "graphql"
	}
	return u.String()
}

// enableAutoMerge is GitHub's mutation (REST has none): the merge happens
// when the required checks and reviews pass, provided the head is still
// expectedHeadOid.
const enableAutoMerge = `mutation($id: ID!, $method: PullRequestMergeMethod!, $head: GitObjectID) {
  enablePullRequestAutoMerge(input: {pullRequestId: $id, mergeMethod: $method, expectedHeadOid: $head}) {
    pullRequest { autoMergeRequest { enabledAt } }
  }
}`

func (g *gitHub) AutoMerge(ctx context.Context, pr PullRequest, head, method string) (AutoMergeResult, error) {
	op := fmt.Sprintf("turning on auto-merge of pull request #%d", pr.Number)
	if pr.NodeID == "" {
		return AutoMergeResult{}, g.fail(op, nil, fmt.Errorf("GitHub gave no node id for pull request #%d", pr.Number))
	}
	req, err := g.c.NewRequest(http.MethodPost, graphQLURL(g.c.BaseURL), map[string]any{
		"query":     enableAutoMerge,
		"variables": map[string]string{"id": pr.NodeID, "method": strings.ToUpper(method), "head": head},
	})
	if err != nil {
		return AutoMergeResult{}, g.fail(op, nil, err)
	}
	var out struct {
		Data struct {
			Enable *struct {
				PullRequest struct {
					AutoMergeRequest *struct{ EnabledAt string } `json:"autoMergeRequest"`
				} `json:"pullRequest"`
			} `json:"enablePullRequestAutoMerge"`
		} `json:"data"`
		Errors []struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	resp, err := g.c.Do(ctx, req, &out)
	if err != nil {
		return AutoMergeResult{}, g.fail(op, resp, err)
	}
	// GraphQL answers 200 and says in errors what it refused: auto-merge
	// not allowed on the repository, a pull request already mergeable
	// ("clean status": nothing required to wait for), ...
	if len(out.Errors) > 0 {
		var msgs []string
		for _, e := range out.Errors {
			msgs = append(msgs, e.Message)
		}
		return AutoMergeResult{State: "refused", Reason: clip(strings.Join(msgs, "; "))}, nil
	}
	if out.Data.Enable == nil || out.Data.Enable.PullRequest.AutoMergeRequest == nil {
		return AutoMergeResult{}, g.fail(op, resp, errors.New("GitHub's answer holds no auto-merge request"))
	}
	return AutoMergeResult{State: "enabled"}, nil
}
