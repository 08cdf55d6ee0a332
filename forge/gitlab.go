package forge

import (
	"context"
	"fmt"
	"net/http"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"
)

type gitLab struct {
	c       *gitlab.Client
	project string // the project's full path, group/subgroup/name
}

func newGitLab(apiURL, project, token string, hc *http.Client) (*gitLab, error) {
	// No retries of its own: a refused call fails the cycle, and the next
	// cycle asks again.
	c, err := gitlab.NewClient(token, gitlab.WithBaseURL(apiURL), gitlab.WithHTTPClient(hc), gitlab.WithoutRetries())
	if err != nil {
		return nil, fmt.Errorf("pullRequest.apiURL: %w", err)
	}
	return &gitLab{c: c, project: project}, nil
}

func (g *gitLab) fail(op string, resp *gitlab.Response, err error) error {
	var r *http.Response
	if resp != nil {
		r = resp.Response
	}
	return classify("gitlab", g.project, op, r, err)
}

func (g *gitLab) Pulls(ctx context.Context, head, base string) ([]PullRequest, error) {
	opts := &gitlab.ListProjectMergeRequestsOptions{
		ListOptions:  gitlab.ListOptions{PerPage: 100},
		State:        gitlab.Ptr("all"),
		OrderBy:      gitlab.Ptr("created_at"),
		Sort:         gitlab.Ptr("desc"),
		SourceBranch: gitlab.Ptr(head),
		TargetBranch: gitlab.Ptr(base),
	}
	var out []PullRequest
	for range maxPages {
		mrs, resp, err := g.c.MergeRequests.ListProjectMergeRequests(g.project, opts, gitlab.WithContext(ctx))
		if err != nil {
			return nil, g.fail("listing merge requests", resp, err)
		}
		for _, m := range mrs {
			// A fork's merge request names the fork as its source project.
			if m.SourceBranch != head || m.TargetBranch != base || m.SourceProjectID == 0 || m.SourceProjectID != m.TargetProjectID {
				continue
			}
			p := PullRequest{Number: m.IID, URL: m.WebURL, Title: m.Title, Body: m.Description,
				Open: m.State == "opened" || m.State == "locked", Merged: m.State == "merged"}
			if m.Author != nil {
				p.Author = m.Author.Username
			}
			out = append(out, p)
		}
		if len(out) >= MaxPulls || resp == nil || resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return out[:min(len(out), MaxPulls)], nil
}

func (g *gitLab) Self(ctx context.Context) (string, error) {
	u, resp, err := g.c.Users.CurrentUser(gitlab.WithContext(ctx))
	if err != nil {
		return "", g.fail("reading the token's user", resp, err)
	}
	return u.Username, nil
}

func (g *gitLab) Open(ctx context.Context, head, base, title, body string, labels []string) (PullRequest, error) {
	opt := &gitlab.CreateMergeRequestOptions{Title: &title, Description: &body, SourceBranch: &head, TargetBranch: &base}
	if len(labels) > 0 {
		l := gitlab.LabelOptions(labels)
		opt.Labels = &l
	}
	m, resp, err := g.c.MergeRequests.CreateMergeRequest(g.project, opt, gitlab.WithContext(ctx))
	if err != nil {
		return PullRequest{}, g.fail("opening a merge request", resp, err)
	}
	return PullRequest{Number: m.IID, URL: m.WebURL, Title: m.Title, Body: m.Description, Open: true}, nil
}

func (g *gitLab) Update(ctx context.Context, number int64, title, body string) error {
	_, resp, err := g.c.MergeRequests.UpdateMergeRequest(g.project, number,
		&gitlab.UpdateMergeRequestOptions{Title: &title, Description: &body}, gitlab.WithContext(ctx))
	if err != nil {
		return g.fail(fmt.Sprintf("updating merge request !%d", number), resp, err)
	}
	return nil
}

func (g *gitLab) AutoMerge(ctx context.Context, pr PullRequest, head, method string) (AutoMergeResult, error) {
	op := fmt.Sprintf("turning on auto-merge of merge request !%d", pr.Number)
	if method == "rebase" {
		return AutoMergeResult{State: "refused", Reason: "GitLab merges or squashes a merge request; fast-forward is the project's merge method"}, nil
	}
	yes, squash := true, method == "squash"
	mr, resp, err := g.c.MergeRequests.AcceptMergeRequest(g.project, pr.Number, &gitlab.AcceptMergeRequestOptions{
		AutoMerge: &yes, Squash: &squash, SHA: &head,
	}, gitlab.WithContext(ctx))
	if err != nil {
		if resp != nil && (resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotAcceptable ||
			resp.StatusCode == http.StatusConflict || resp.StatusCode == http.StatusUnprocessableEntity) {
			return AutoMergeResult{State: "refused", Reason: clip(err.Error())}, nil
		}
		return AutoMergeResult{}, g.fail(op, resp, err)
	}
	if mr.State == "merged" {
		return AutoMergeResult{State: "merged"}, nil
	}
	return AutoMergeResult{State: "enabled"}, nil
}
