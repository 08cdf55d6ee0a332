package forge

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/imagebutler/imagebutler/config"
)

// fakeGitLab answers as GitLab's REST API (v4) documents the merge request
// calls the butler makes, for project group/sub/apps: the real service
// cannot be reached from here; the client is the real client-go.
type fakeGitLab struct {
	mu   sync.Mutex
	mrs  []map[string]any
	fail func(w http.ResponseWriter) bool
	// pipeline is the merge requests' head pipeline status ("" for none);
	// merges are the merge calls' bodies.
	pipeline string
	merges   []map[string]any
}

func (f *fakeGitLab) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("PRIVATE-TOKEN") != "good-token" {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"message":"401 Unauthorized"}`)
		return
	}
	if f.fail != nil && f.fail(w) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	const prefix = "/api/v4/projects/group%2Fsub%2Fapps/merge_requests"
	path := r.URL.EscapedPath()
	switch {
	case r.Method == http.MethodGet && path == "/api/v4/user":
		json.NewEncoder(w).Encode(map[string]any{"id": 7, "username": "butler"})
	case r.Method == http.MethodGet && path == prefix:
		q := r.URL.Query()
		out := []map[string]any{}
		for i := len(f.mrs) - 1; i >= 0; i-- {
			m := f.mrs[i]
			if q.Get("source_branch") == m["source_branch"] && q.Get("target_branch") == m["target_branch"] {
				out = append(out, m)
			}
		}
		json.NewEncoder(w).Encode(out)
	case r.Method == http.MethodPost && path == prefix:
		var in map[string]any
		json.NewDecoder(r.Body).Decode(&in)
		iid := len(f.mrs) + 1
		labels := []string{} // sent as "a,b"; answered as a list
		if l, ok := in["labels"].(string); ok && l != "" {
			labels = strings.Split(l, ",")
		}
		m := map[string]any{"iid": iid, "state": "opened", "title": in["title"], "description": in["description"],
			"source_project_id": 42, "target_project_id": 42, "author": map[string]any{"username": "butler"},
			"source_branch": in["source_branch"], "target_branch": in["target_branch"], "labels": labels,
			"web_url": "https://gitlab.example.com/group/sub/apps/-/merge_requests/" + strconv.Itoa(iid), "sha": "c0ffee"}
		f.mrs = append(f.mrs, m)
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(m)
	case r.Method == http.MethodPut && strings.HasPrefix(path, prefix+"/") && strings.HasSuffix(path, "/merge"):
		// As documented: 409 when sha is not the source branch's head; with
		// auto_merge, a running pipeline sets the merge for when it
		// succeeds, no pipeline (or a finished one) merges now.
		iid, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(path, prefix+"/"), "/merge"))
		var in map[string]any
		json.NewDecoder(r.Body).Decode(&in)
		f.merges = append(f.merges, in)
		m := f.mrs[iid-1]
		switch {
		case m["state"] != "opened":
			w.WriteHeader(http.StatusMethodNotAllowed)
			io.WriteString(w, `{"message":"405 Method Not Allowed"}`)
		case in["sha"] != m["sha"]:
			w.WriteHeader(http.StatusConflict)
			io.WriteString(w, `{"message":"SHA does not match HEAD of source branch: `+m["sha"].(string)+`"}`)
		case in["auto_merge"] == true && f.pipeline == "running":
			m["merge_when_pipeline_succeeds"] = true
			json.NewEncoder(w).Encode(m)
		default:
			m["state"] = "merged"
			json.NewEncoder(w).Encode(m)
		}
	case r.Method == http.MethodPut && strings.HasPrefix(path, prefix+"/"):
		iid, _ := strconv.Atoi(strings.TrimPrefix(path, prefix+"/"))
		var in map[string]any
		json.NewDecoder(r.Body).Decode(&in)
		m := f.mrs[iid-1]
		m["title"], m["description"] = in["title"], in["description"]
		json.NewEncoder(w).Encode(m)
	default:
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"message":"404 Project Not Found"}`)
	}
}

func TestGitLabMergeRequests(t *testing.T) {
	f := &fakeGitLab{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	repo := config.Repository{URL: "https://gitlab.example.com/group/sub/apps.git", Branch: "main",
		PullRequest: &config.PullRequest{Provider: "gitlab", APIURL: srv.URL + "/", Branch: "imagebutler/main"}}
	c, err := New(repo, "good-token", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, err := c.Open(ctx, "imagebutler/main", "main", "Update x", "body", []string{"images", "bot"})
	if err != nil || p.Number != 1 || !p.Open || !strings.HasSuffix(p.URL, "/merge_requests/1") {
		t.Fatalf("Open = %+v, %v", p, err)
	}
	if got := f.mrs[0]["labels"].([]string); strings.Join(got, ",") != "images,bot" {
		t.Errorf("labels %v, want [images bot]", got)
	}
	if err := c.Update(ctx, 1, "Update y", "new body"); err != nil {
		t.Fatal(err)
	}
	f.mrs[0]["state"] = "merged"
	// An outsider's merge request from their fork's branch of the same name.
	f.mrs = append(f.mrs, map[string]any{"iid": 2, "state": "closed", "title": "Update y", "description": "<!-- imagebutler-set: ns:a=999.0.0 -->",
		"source_branch": "imagebutler/main", "target_branch": "main", "source_project_id": 99, "target_project_id": 42,
		"author": map[string]any{"username": "outsider"}})
	pulls, err := c.Pulls(ctx, "imagebutler/main", "main")
	if err != nil || len(pulls) != 1 || pulls[0].Title != "Update y" || pulls[0].Body != "new body" || pulls[0].State() != "merged" || pulls[0].Author != "butler" {
		t.Fatalf("Pulls = %+v, %v; want !1 alone, not the fork's", pulls, err)
	}
	if self, err := c.Self(ctx); err != nil || self != "butler" {
		t.Errorf("Self = %q, %v", self, err)
	}

	f.fail = func(w http.ResponseWriter) bool {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"message":"Retry later"}`)
		return true
	}
	_, err = c.Pulls(ctx, "imagebutler/main", "main")
	if err == nil || !strings.Contains(err.Error(), "gitlab: listing merge requests in group/sub/apps: HTTP 429: rate limited: retry after 7s") {
		t.Errorf("429: %v", err)
	}
	f.fail = func(w http.ResponseWriter) bool {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"message":"403 Forbidden"}`)
		return true
	}
	if _, err = c.Open(ctx, "imagebutler/main", "main", "t", "b", nil); err == nil || !strings.Contains(err.Error(), "HTTP 403: the token lacks a permission: the token needs the api scope") {
		t.Errorf("403: %v", err)
	}
}

func TestGitLabAutoMerge(t *testing.T) {
	f := &fakeGitLab{pipeline: "running"}
	srv := httptest.NewServer(f)
	defer srv.Close()
	repo := config.Repository{URL: "https://gitlab.example.com/group/sub/apps.git", Branch: "main",
		PullRequest: &config.PullRequest{Provider: "gitlab", APIURL: srv.URL + "/", Branch: "imagebutler/main"}}
	c, err := New(repo, "good-token", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p, err := c.Open(ctx, "imagebutler/main", "main", "Update x", "body", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, pipeline, head, method string
		want                         AutoMergeResult
		sent                         string // the merge call's body, "" when none is made
	}{
		{"pipeline running", "running", "c0ffee", "squash", AutoMergeResult{State: "enabled"}, `{"auto_merge":true,"sha":"c0ffee","squash":true}`},
		{"head moved", "running", "0ld", "merge", AutoMergeResult{State: "refused", Reason: "PUT " + srv.URL + "/api/v4/projects/group%2Fsub%2Fapps/merge_requests/1/merge: 409 {message: SHA does not match HEAD of source branch: c0ffee}"}, `{"auto_merge":true,"sha":"0ld","squash":false}`},
		{"rebase", "running", "c0ffee", "rebase", AutoMergeResult{State: "refused", Reason: "GitLab merges or squashes a merge request; fast-forward is the project's merge method"}, ""},
		{"no pipeline", "", "c0ffee", "merge", AutoMergeResult{State: "merged"}, `{"auto_merge":true,"sha":"c0ffee","squash":false}`},
		{"already merged", "", "c0ffee", "merge", AutoMergeResult{State: "refused", Reason: "PUT " + srv.URL + "/api/v4/projects/group%2Fsub%2Fapps/merge_requests/1/merge: 405 {message: 405 Method Not Allowed}"}, `{"auto_merge":true,"sha":"c0ffee","squash":false}`},
	} {
		f.mu.Lock()
		f.pipeline, f.merges = tc.pipeline, nil
		f.mu.Unlock()
		got, err := c.AutoMerge(ctx, p, tc.head, tc.method)
		if err != nil || got != tc.want {
			t.Errorf("%s: AutoMerge = %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
		sent := ""
		if len(f.merges) == 1 {
			b, _ := json.Marshal(f.merges[0])
			sent = string(b)
		}
		if sent != tc.sent {
			t.Errorf("%s: sent %s, want %s", tc.name, sent, tc.sent)
		}
	}
}
