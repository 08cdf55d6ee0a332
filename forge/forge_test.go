package forge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/forge/forgetest"
)

func gitHubClient(t *testing.T, f *forgetest.GitHub, token string) Client {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	repo := config.Repository{URL: "https://github.com/org/apps.git", Branch: "main",
		PullRequest: &config.PullRequest{Provider: "github", APIURL: srv.URL + "/", Branch: "imagebutler/main"}}
	c, err := New(repo, token, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGitHubPullRequests(t *testing.T) {
	f := &forgetest.GitHub{Owner: "org", Repo: "apps", Token: "good-token"}
	c := gitHubClient(t, f, "good-token")
	ctx := context.Background()
	if pulls, err := c.Pulls(ctx, "imagebutler/main", "main"); err != nil || len(pulls) != 0 {
		t.Fatalf("Pulls = %v, %v; want none", pulls, err)
	}
	p, err := c.Open(ctx, "imagebutler/main", "main", "Update x", "body", []string{"images"})
	if err != nil || p.Number != 1 || !p.Open || p.URL != "https://github.com/org/apps/pull/1" {
		t.Fatalf("Open = %+v, %v", p, err)
	}
	if got := f.Pulls()[0].Labels; len(got) != 1 || got[0] != "images" {
		t.Errorf("labels = %v, want [images]", got)
	}
	if err := c.Update(ctx, 1, "Update y", "new body"); err != nil {
		t.Fatal(err)
	}
	f.Add("someone/else", "main")
	f.Close(1, true)
	// 150 outsiders' pull requests from their forks' branches of the
	// butler's name, newer than the butler's: none is the butler's, and the
	// butler's is still found (pages of 100).
	for range 150 {
		f.AddFork("imagebutler/main", "main", "<!-- imagebutler-set: ns:a=999.0.0 -->", "closed")
	}
	pulls, err := c.Pulls(ctx, "imagebutler/main", "main")
	if err != nil || len(pulls) != 1 || pulls[0].Title != "Update y" || pulls[0].Body != "new body" || pulls[0].State() != "merged" || pulls[0].Author != "butler" {
		t.Fatalf("Pulls = %+v, %v; want #1 updated and merged, not someone else's nor a fork's", pulls, err)
	}
	if self, err := c.Self(ctx); err != nil || self != "butler" {
		t.Errorf("Self = %q, %v", self, err)
	}
}

// Refusals name the repository, what was asked and what to do.
func TestForgeRefusals(t *testing.T) {
	reset := time.Now().Add(10 * time.Minute).Unix()
	tests := []struct {
		name      string
		token     string
		fail      func(w http.ResponseWriter, r *http.Request) bool
		want      []string
		rateLimit bool
	}{
		{"bad token", "wrong", nil, []string{"github: listing pull requests in org/apps: HTTP 401", "the token was refused"}, false},
		{"missing scope", "good-token", func(w http.ResponseWriter, _ *http.Request) bool {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"message":"Resource not accessible by personal access token"}`)
			return true
		}, []string{"HTTP 403", `"Pull requests: read and write"`, "Resource not accessible"}, false},
		{"no such repository", "good-token", func(w http.ResponseWriter, _ *http.Request) bool {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"message":"Not Found"}`)
			return true
		}, []string{"org/apps: HTTP 404: no such repository, or the token cannot see it"}, false},
		{"rate limit (403, remaining 0)", "good-token", func(w http.ResponseWriter, _ *http.Request) bool {
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Limit", "5000")
			w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset, 10))
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"message":"API rate limit exceeded"}`)
			return true
		}, []string{"HTTP 403: rate limited until " + time.Unix(reset, 0).UTC().Format(time.RFC3339)}, true},
		{"too many requests (429, Retry-After)", "good-token", func(w http.ResponseWriter, _ *http.Request) bool {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"message":"You have exceeded a secondary rate limit"}`)
			return true
		}, []string{"HTTP 429: rate limited: retry after 30s"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &forgetest.GitHub{Owner: "org", Repo: "apps", Token: "good-token", Fail: tt.fail}
			c := gitHubClient(t, f, tt.token)
			_, err := c.Pulls(context.Background(), "imagebutler/main", "main")
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a *forge.Error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
			if fe.RateLimited() != tt.rateLimit {
				t.Errorf("RateLimited = %v, want %v", fe.RateLimited(), tt.rateLimit)
			}
			// The next call asks again (the next cycle tries again).
			f.Fail = nil
			if tt.token == "good-token" {
				if _, err := c.Pulls(context.Background(), "imagebutler/main", "main"); err != nil && !tt.rateLimit {
					t.Errorf("the next call failed too: %v", err)
				}
			}
		})
	}
}

// A forge's error body that echoes the request (the token among it) never
// reaches the error's text, on any forge.
func TestErrorsNeverHoldTheToken(t *testing.T) {
	const token = "tok-5ecr3t-value-1234"
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"message":"Bad credentials: Authorization: %s; PRIVATE-TOKEN: %s; token=%s"}`,
			r.Header.Get("Authorization"), r.Header.Get("PRIVATE-TOKEN"), r.URL.Query().Get("token"))
	})
	srv := httptest.NewServer(echo)
	defer srv.Close()
	for _, provider := range []string{"github", "gitea", "gitlab"} {
		repo := config.Repository{URL: "https://forge.example.com/org/apps.git", Branch: "main",
			PullRequest: &config.PullRequest{Provider: provider, APIURL: srv.URL + "/", Branch: "imagebutler/main"}}
		c, err := New(repo, token, srv.Client())
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Pulls(context.Background(), "imagebutler/main", "main")
		if err == nil || strings.Contains(err.Error(), token) || !strings.Contains(err.Error(), "HTTP 401") {
			t.Errorf("%s: %v", provider, err)
		}
		var fe *Error
		if !errors.As(err, &fe) || fe.Status != http.StatusUnauthorized {
			t.Errorf("%s: the error lost its status: %#v", provider, err)
		}
		if _, err := c.Self(context.Background()); err == nil || strings.Contains(err.Error(), token) {
			t.Errorf("%s: Self: %v", provider, err)
		}
	}
}

func TestGitHubAutoMerge(t *testing.T) {
	f := &forgetest.GitHub{Owner: "org", Repo: "apps", Token: "good-token"}
	c := gitHubClient(t, f, "good-token")
	ctx := context.Background()
	p, err := c.Open(ctx, "imagebutler/main", "main", "Update x", "body", nil)
	if err != nil || p.NodeID == "" {
		t.Fatalf("Open = %+v, %v; want a node id", p, err)
	}
	got, err := c.AutoMerge(ctx, p, "0123abcd", "squash")
	if err != nil || got != (AutoMergeResult{State: "enabled"}) {
		t.Fatalf("AutoMerge = %+v, %v; want enabled", got, err)
	}
	want := forgetest.AutoMergeCall{PullRequestID: p.NodeID, MergeMethod: "SQUASH", ExpectedHeadOid: "0123abcd"}
	if calls := f.AutoMerges(); len(calls) != 1 || calls[0] != want {
		t.Errorf("mutations = %+v, want %+v", calls, want)
	}
	f.AutoMergeRefusal = "Pull request Auto merge is not allowed for this repository"
	got, err = c.AutoMerge(ctx, p, "0123abcd", "merge")
	if err != nil || got != (AutoMergeResult{State: "refused", Reason: f.AutoMergeRefusal}) {
		t.Errorf("refused: AutoMerge = %+v, %v", got, err)
	}
	// A pull request GitHub does not know (another node id) is refused too,
	// in GitHub's words.
	got, err = c.AutoMerge(ctx, PullRequest{Number: 9, NodeID: "PR_other"}, "0123abcd", "merge")
	if err != nil || got.State != "refused" || !strings.Contains(got.Reason, "Could not resolve to a node with the global id of 'PR_other'") {
		t.Errorf("unknown node: AutoMerge = %+v, %v", got, err)
	}
	// A refused token is an error of the call, not a refusal.
	bad := gitHubClient(t, f, "bad-token")
	if _, err := bad.AutoMerge(ctx, p, "0123abcd", "merge"); err == nil || !strings.Contains(err.Error(), "github: turning on auto-merge of pull request #1 in org/apps: HTTP 401: the token was refused") {
		t.Errorf("401: %v", err)
	}
}

func TestGraphQLURL(t *testing.T) {
	for _, tc := range []struct{ rest, want string }{
		{"https://api.github.com/", "https://api.github.com/graphql"},
		{"https://ghe.example.com/api/v3/", "https://ghe.example.com/api/graphql"},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080/graphql"},
	} {
		u, _ := url.Parse(tc.rest)
		if got := graphQLURL(u); got != tc.want {
			t.Errorf("graphQLURL(%s) = %s, want %s", tc.rest, got, tc.want)
		}
	}
}
