package forge

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagebutler/imagebutler/config"
)

// fakeGitHub answers as the GitHub REST API does for the calls the butler
// makes (list, create and edit pull requests, label an issue), from the
// documented request and response shapes. The real service cannot be
// reached from here; the client is the real go-github.
type fakeGitHub struct {
	mu     sync.Mutex
	pulls  []map[string]any
	labels map[int][]string
	calls  []string
	// fail, when set, answers every request instead.
	fail func(w http.ResponseWriter) bool
}

func (f *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	if r.Header.Get("Authorization") != "Bearer good-token" {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}`)
		return
	}
	if f.fail != nil && f.fail(w) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/repos/org/apps/pulls":
		q := r.URL.Query()
		var out []map[string]any
		for i := len(f.pulls) - 1; i >= 0; i-- { // newest first
			p := f.pulls[i]
			head := p["head"].(map[string]any)
			if q.Get("head") != "" && q.Get("head") != "org:"+head["ref"].(string) {
				continue
			}
			out = append(out, p)
		}
		json.NewEncoder(w).Encode(out)
	case r.Method == http.MethodPost && r.URL.Path == "/repos/org/apps/pulls":
		var in map[string]string
		json.NewDecoder(r.Body).Decode(&in)
		n := len(f.pulls) + 1
		p := map[string]any{"number": n, "state": "open", "title": in["title"], "body": in["body"],
			"html_url": "https://github.com/org/apps/pull/" + strconv.Itoa(n),
			"head": map[string]any{"ref": in["head"]}, "base": map[string]any{"ref": in["base"]}}
		f.pulls = append(f.pulls, p)
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(p)
	case r.Method == http.MethodPatch && strings.HasPrefix(r.URL.Path, "/repos/org/apps/pulls/"):
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/repos/org/apps/pulls/"))
		var in map[string]string
		json.NewDecoder(r.Body).Decode(&in)
		p := f.pulls[n-1]
		p["title"], p["body"] = in["title"], in["body"]
		json.NewEncoder(w).Encode(p)
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/labels"):
		n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/repos/org/apps/issues/"), "/labels"))
		var in []string
		json.NewDecoder(r.Body).Decode(&in)
		if f.labels == nil {
			f.labels = map[int][]string{}
		}
		f.labels[n] = in
		json.NewEncoder(w).Encode([]map[string]string{})
	default:
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"message":"Not Found"}`)
	}
}

func gitHubClient(t *testing.T, f *fakeGitHub, token string) Client {
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
	f := &fakeGitHub{}
	c := gitHubClient(t, f, "good-token")
	ctx := context.Background()
	if pulls, err := c.Pulls(ctx, "imagebutler/main", "main"); err != nil || len(pulls) != 0 {
		t.Fatalf("Pulls = %v, %v; want none", pulls, err)
	}
	p, err := c.Open(ctx, "imagebutler/main", "main", "Update x", "body", []string{"images"})
	if err != nil || p.Number != 1 || !p.Open || p.URL != "https://github.com/org/apps/pull/1" {
		t.Fatalf("Open = %+v, %v", p, err)
	}
	if got := f.labels[1]; len(got) != 1 || got[0] != "images" {
		t.Errorf("labels = %v, want [images]", got)
	}
	if err := c.Update(ctx, 1, "Update y", "new body"); err != nil {
		t.Fatal(err)
	}
	f.pulls = append(f.pulls, map[string]any{"number": 2, "state": "open", "head": map[string]any{"ref": "someone/else"}, "base": map[string]any{"ref": "main"}})
	f.pulls[0]["state"], f.pulls[0]["merged_at"] = "closed", time.Now().Format(time.RFC3339)
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
		fail      func(w http.ResponseWriter) bool
		want      []string
		rateLimit bool
	}{
		{"bad token", "wrong", nil, []string{"github: listing pull requests in org/apps: HTTP 401", "the token was refused"}, false},
		{"missing scope", "good-token", func(w http.ResponseWriter) bool {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"message":"Resource not accessible by personal access token"}`)
			return true
		}, []string{"HTTP 403", `"Pull requests: read and write"`, "Resource not accessible"}, false},
		{"no such repository", "good-token", func(w http.ResponseWriter) bool {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"message":"Not Found"}`)
			return true
		}, []string{"org/apps: HTTP 404: no such repository, or the token cannot see it"}, false},
		{"rate limit (403, remaining 0)", "good-token", func(w http.ResponseWriter) bool {
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Limit", "5000")
			w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset, 10))
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"message":"API rate limit exceeded"}`)
			return true
		}, []string{"HTTP 403: rate limited until " + time.Unix(reset, 0).UTC().Format(time.RFC3339)}, true},
		{"too many requests (429, Retry-After)", "good-token", func(w http.ResponseWriter) bool {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"message":"You have exceeded a secondary rate limit"}`)
			return true
		}, []string{"HTTP 429: rate limited: retry after 30s"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeGitHub{fail: tt.fail}
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
			f.fail = nil
			if tt.token == "good-token" {
				if _, err := c.Pulls(context.Background(), "imagebutler/main", "main"); err != nil && !tt.rateLimit {
					t.Errorf("the next call failed too: %v", err)
				}
			}
		})
	}
}
