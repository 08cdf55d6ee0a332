package pullrequests

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/forge/forgetest"
	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
	"github.com/imagebutler/imagebutler/scanner"
)

// TestPullRequestAutoMerge: with pullRequest.autoMerge on a real Gitea
// whose main requires the status check ci/test, the butler's pull request
// is scheduled to merge by itself (merge_when_checks_succeed, for the
// butler's head only); it stays open while the check is pending, and once
// CI reports success through the API, Gitea merges it (squashed) with no
// one pressing merge.
func TestPullRequestAutoMerge(t *testing.T) {
	e := newPREnvWith(t, "auto-merge", "autoMerge: {method: squash}")
	ctx := context.Background()
	repo := "/repos/" + e.g.User + "/" + e.name
	if err := e.g.API(ctx, http.MethodPost, repo+"/branch_protections", map[string]any{
		"rule_name": "main", "enable_status_check": true, "status_check_contexts": []string{"ci/test"},
	}, nil); err != nil {
		t.Fatal(err)
	}
	e.ecr.push("qa-sha-0000001")
	r := e.cycle(t)
	if r.Err != nil || r.PullRequest == nil || r.PullRequest.Action != "opened" {
		t.Fatalf("first cycle: err %v, pull request %+v\n%s", r.Err, r.PullRequest, e.logs.String())
	}
	// Gitea checks a new pull request's mergeability in the background
	// (the butler asks again for 30 s, then leaves it pending for the next
	// cycle); a freshly started Gitea on a loaded machine may take longer.
	for deadline := time.Now().Add(5 * time.Minute); strings.HasPrefix(r.PullRequest.AutoMerge, "pending") && time.Now().Before(deadline); {
		var pr struct {
			Mergeable bool `json:"mergeable"`
		}
		for !pr.Mergeable && time.Now().Before(deadline) {
			time.Sleep(500 * time.Millisecond)
			e.g.API(ctx, http.MethodGet, fmt.Sprintf("%s/pulls/%d", repo, r.PullRequest.Number), nil, &pr)
		}
		r = e.cycle(t)
	}
	if r.PullRequest.AutoMerge != "enabled" {
		t.Fatalf("auto-merge %q, want enabled\n%s", r.PullRequest.AutoMerge, e.logs.String())
	}
	pulls := e.pulls(t)
	if len(pulls) != 1 || pulls[0].State != "open" || pulls[0].Merged {
		t.Fatalf("before the check passed: %+v, want one open pull request", pulls)
	}
	// Asked once per head: a cycle with nothing new does not ask again.
	before := strings.Count(e.logs.String(), "pull request auto-merge enabled")
	if r = e.cycle(t); r.Err != nil || r.PullRequest.AutoMerge != "enabled" || strings.Count(e.logs.String(), "pull request auto-merge enabled") != before {
		t.Errorf("cycle with nothing new: err %v, auto-merge %q, asked again: %v", r.Err, r.PullRequest.AutoMerge, strings.Count(e.logs.String(), "pull request auto-merge enabled") != before)
	}

	if err := e.g.API(ctx, http.MethodPost, repo+"/statuses/"+pulls[0].Head.SHA, map[string]string{
		"state": "success", "context": "ci/test", "description": "tests passed",
	}, nil); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(250 * time.Millisecond) {
		if p := e.pulls(t); len(p) == 1 && p[0].Merged {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Gitea did not merge the pull request after its check passed: %+v", e.pulls(t))
		}
	}
	if !strings.Contains(e.file(t, "main", seedFile), ":qa-sha-0000001") {
		t.Fatal("the merge did not reach main")
	}
	var commits []struct {
		Parents []struct{ SHA string }   `json:"parents"`
		Commit  struct{ Message string } `json:"commit"`
	}
	if err := e.g.API(ctx, http.MethodGet, repo+"/commits?sha=main&limit=1", nil, &commits); err != nil {
		t.Fatal(err)
	}
	if len(commits) != 1 || len(commits[0].Parents) != 1 {
		t.Errorf("main's head: %+v, want a squashed commit (one parent)", commits)
	}
	if r = e.cycle(t); r.Err != nil || r.PullRequest.State != "merged" {
		t.Errorf("cycle after the merge: err %v, pull request %+v", r.Err, r.PullRequest)
	}
}

// TestPullRequestGitHubAutoMerge: on GitHub (forgetest.GitHub, GitHub's
// documented answers, through go-github; git is a real http-backend) the
// butler sends enablePullRequestAutoMerge with its pull request's node id,
// the method, and its own pushed commit as expectedHeadOid; a refusal is
// said once per head, in the log and /status, and the pull request stays
// open.
func TestPullRequestGitHubAutoMerge(t *testing.T) {
	e := newGitEnv(t, "plain")
	url, err := e.srv.InitRepo("org/apps", "main", map[string]string{"apps/bartender/deployment.yaml": testpeers.SeedDeployment})
	if err != nil {
		t.Fatal(err)
	}
	api := &forgetest.GitHub{Owner: "org", Repo: "apps", Token: gitToken}
	srv := httptest.NewServer(api)
	defer srv.Close()
	repo := &e.cfg.Repositories[0]
	repo.URL = url
	repo.PullRequest = &config.PullRequest{Provider: "github", APIURL: srv.URL + "/", Branch: "imagebutler/main",
		AutoMerge: &config.AutoMerge{Method: "rebase"}}
	l := &listing{}
	l.push("qa-sha-0000001")
	butler := scanner.New(e.cfg, l, slog.New(slog.NewTextHandler(e.logs, nil)))
	r := butler.RunOnce(context.Background())[0]
	if r.Err != nil || r.PullRequest.Action != "opened" || r.PullRequest.AutoMerge != "enabled" {
		t.Fatalf("first cycle: err %v, pull request %+v\n%s", r.Err, r.PullRequest, e.logs.String())
	}
	want := forgetest.AutoMergeCall{PullRequestID: "PR_kwDOAbc1", MergeMethod: "REBASE", ExpectedHeadOid: r.Commit}
	if calls := api.AutoMerges(); len(calls) != 1 || calls[0] != want {
		t.Fatalf("mutations %+v, want %+v", calls, want)
	}
	status, _ := json.Marshal(butler.Status())
	if !strings.Contains(string(status), `"action":"opened","title":"Update falcon-qa:my-policy-bartender to qa-sha-0000001","autoMerge":"enabled"`) {
		t.Errorf("/status does not say auto-merge is on:\n%s", status)
	}

	api.AutoMergeRefusal = "Pull request Auto merge is not allowed for this repository"
	l.push("qa-sha-0000002")
	r = butler.RunOnce(context.Background())[0]
	wantState := "refused: " + api.AutoMergeRefusal
	if r.Err != nil || r.PullRequest.Action != "updated" || r.PullRequest.AutoMerge != wantState {
		t.Fatalf("cycle with a new head: err %v, pull request %+v", r.Err, r.PullRequest)
	}
	if calls := api.AutoMerges(); len(calls) != 2 || calls[1].ExpectedHeadOid != r.Commit {
		t.Errorf("mutations %+v: want a second one for the new head %s", calls, r.Commit)
	}
	// Nothing new: not asked again, the refusal still shown, said once.
	r = butler.RunOnce(context.Background())[0]
	if r.Err != nil || r.PullRequest.Action != "unchanged" || r.PullRequest.AutoMerge != wantState || len(api.AutoMerges()) != 2 {
		t.Errorf("cycle with nothing new: err %v, pull request %+v, %d mutations", r.Err, r.PullRequest, len(api.AutoMerges()))
	}
	if n := strings.Count(e.logs.String(), "the forge refused to merge the pull request by itself"); n != 1 {
		t.Errorf("the refusal was logged %d times, want once:\n%s", n, e.logs.String())
	}
	if p := api.Pulls(); len(p) != 1 || p[0].State != "open" {
		t.Errorf("pull requests %+v, want the one left open", p)
	}
}
