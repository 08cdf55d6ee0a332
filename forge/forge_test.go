package forge

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
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
	pulls, err := c.Pulls(ctx, "imagebutler/main", "main")
	if err != nil || len(pulls) != 1 || pulls[0].Title != "Update y" || pulls[0].Body != "new body" || pulls[0].State() != "merged" {
		t.Fatalf("Pulls = %+v, %v; want #1 updated and merged, not someone else's", pulls, err)
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
