// Package forgetest provides a stand-in for GitHub's REST API, for tests:
// the real service cannot be reached from where the tests run, so the
// calls the butler makes (list, create and edit pull requests, label an
// issue) are answered as GitHub documents them, and driven through the real
// client library (google/go-github).
package forgetest

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// GitHub answers as GitHub's REST API for one repository, owner/repo,
// to requests bearing Token, which acts as the user Login ("butler" when
// empty). The repository's id is 1; forks have others. Lists are paged as
// GitHub pages them (per_page, page, a Link header).
type GitHub struct {
	Owner, Repo, Token string
	Login              string

	mu     sync.Mutex
	pulls  []map[string]any
	labels map[int][]string
	// Fail, when set and returning true, has answered the request instead.
	Fail func(w http.ResponseWriter, r *http.Request) bool
	// AutoMergeRefusal, when set, is the GraphQL error enabling auto-merge
	// answers, as GitHub does when the repository does not allow it.
	AutoMergeRefusal string
	autoMerges       []AutoMergeCall
}

// AutoMergeCall is one enablePullRequestAutoMerge mutation received.
type AutoMergeCall struct {
	PullRequestID, MergeMethod, ExpectedHeadOid string
}

// AutoMerges returns the enablePullRequestAutoMerge mutations received.
func (g *GitHub) AutoMerges() []AutoMergeCall {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]AutoMergeCall(nil), g.autoMerges...)
}

// nodeID is GitHub's GraphQL id of pull request n (opaque to clients).
func nodeID(n int) string { return "PR_kwDOAbc" + strconv.Itoa(n) }

// Pull is what the fake holds of one pull request.
type Pull struct {
	Number      int
	State       string // open or closed
	Merged      bool
	Title, Body string
	Head, Base  string
	Labels      []string
}

// Pulls returns the pull requests, oldest first.
func (g *GitHub) Pulls() []Pull {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []Pull
	for _, p := range g.pulls {
		n := p["number"].(int)
		out = append(out, Pull{Number: n, State: p["state"].(string), Merged: p["merged_at"] != nil,
			Title: p["title"].(string), Body: p["body"].(string),
			Head: p["head"].(map[string]any)["ref"].(string), Base: p["base"].(map[string]any)["ref"].(string), Labels: g.labels[n]})
	}
	return out
}

// Close closes pull request number, merged or not, as a person would.
func (g *GitHub) Close(number int, merged bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	p := g.pulls[number-1]
	p["state"] = "closed"
	if merged {
		p["merged_at"] = time.Now().UTC().Format(time.RFC3339)
	}
}

// Add adds a pull request a person opened from branch head of this same
// repository.
func (g *GitHub) Add(head, base string) { g.add(head, base, 1, "person", "", "open") }

// AddFork adds a pull request an outsider opened from branch head of a fork
// (repository id 2, owner/<repo>-fork: in the owner's own account, so that
// GitHub's head=owner:branch filter matches it), with body, closed or open.
func (g *GitHub) AddFork(head, base, body, state string) {
	g.add(head, base, 2, "outsider", body, state)
}

func (g *GitHub) add(head, base string, repoID int, user, body, state string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pulls = append(g.pulls, map[string]any{"number": len(g.pulls) + 1, "node_id": nodeID(len(g.pulls) + 1), "state": state, "title": "", "body": body,
		"user": map[string]any{"login": user},
		"head": g.branch(head, repoID), "base": g.branch(base, 1)})
}

// branch is a pull request's head or base: ref in the repository id.
func (g *GitHub) branch(ref string, id int) map[string]any {
	name := g.Repo
	if id != 1 {
		name += "-fork"
	}
	return map[string]any{"ref": ref, "label": g.Owner + ":" + ref,
		"repo": map[string]any{"id": id, "full_name": g.Owner + "/" + name}}
}

func (g *GitHub) login() string {
	if g.Login == "" {
		return "butler"
	}
	return g.Login
}

// ServeHTTP answers one API request.
func (g *GitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.Fail != nil && g.Fail(w, r) {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+g.Token {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}`)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	prefix := "/repos/" + g.Owner + "/" + g.Repo
	path := r.URL.Path
	switch {
	case r.Method == http.MethodGet && path == "/user":
		json.NewEncoder(w).Encode(map[string]any{"login": g.login(), "id": 7})
	case r.Method == http.MethodGet && path == prefix+"/pulls":
		q := r.URL.Query()
		out := []map[string]any{}
		for i := len(g.pulls) - 1; i >= 0; i-- { // newest first (sort=created, direction=desc)
			p := g.pulls[i]
			// head=owner:branch matches the label, which a fork owned by
			// another account does not share.
			if h := q.Get("head"); h != "" && h != p["head"].(map[string]any)["label"] {
				continue
			}
			if b := q.Get("base"); b != "" && b != p["base"].(map[string]any)["ref"].(string) {
				continue
			}
			if s := q.Get("state"); s != "" && s != "all" && s != p["state"] {
				continue
			}
			out = append(out, p)
		}
		per, _ := strconv.Atoi(q.Get("per_page"))
		if per <= 0 {
			per = 30
		}
		page, _ := strconv.Atoi(q.Get("page"))
		page = max(page, 1)
		from := min((page-1)*per, len(out))
		to := min(from+per, len(out))
		if to < len(out) {
			next := *r.URL
			q.Set("page", strconv.Itoa(page+1))
			next.RawQuery = q.Encode()
			w.Header().Set("Link", `<http://`+r.Host+next.String()+`>; rel="next"`)
		}
		json.NewEncoder(w).Encode(out[from:to])
	case r.Method == http.MethodPost && path == prefix+"/pulls":
		var in map[string]string
		json.NewDecoder(r.Body).Decode(&in)
		for _, p := range g.pulls {
			if p["state"] == "open" && p["head"].(map[string]any)["ref"] == in["head"] {
				w.WriteHeader(http.StatusUnprocessableEntity)
				io.WriteString(w, `{"message":"Validation Failed","errors":[{"message":"A pull request already exists"}]}`)
				return
			}
		}
		n := len(g.pulls) + 1
		p := map[string]any{"number": n, "node_id": nodeID(n), "state": "open", "title": in["title"], "body": in["body"],
			"html_url": "https://github.com/" + g.Owner + "/" + g.Repo + "/pull/" + strconv.Itoa(n),
			"user":     map[string]any{"login": g.login()},
			"head":     g.branch(in["head"], 1), "base": g.branch(in["base"], 1)}
		g.pulls = append(g.pulls, p)
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(p)
	case r.Method == http.MethodPatch && strings.HasPrefix(path, prefix+"/pulls/"):
		n, err := strconv.Atoi(strings.TrimPrefix(path, prefix+"/pulls/"))
		if err != nil || n < 1 || n > len(g.pulls) {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"message":"Not Found"}`)
			return
		}
		var in map[string]string
		json.NewDecoder(r.Body).Decode(&in)
		p := g.pulls[n-1]
		p["title"], p["body"] = in["title"], in["body"]
		json.NewEncoder(w).Encode(p)
	case r.Method == http.MethodPost && strings.HasPrefix(path, prefix+"/issues/") && strings.HasSuffix(path, "/labels"):
		n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(path, prefix+"/issues/"), "/labels"))
		var in []string
		json.NewDecoder(r.Body).Decode(&in)
		if g.labels == nil {
			g.labels = map[int][]string{}
		}
		g.labels[n] = append(g.labels[n], in...)
		json.NewEncoder(w).Encode([]map[string]string{})
	case r.Method == http.MethodPost && path == "/graphql":
		g.graphQL(w, r)
	default:
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"message":"Not Found"}`)
	}
}

// graphQL answers the one mutation the butler sends,
// enablePullRequestAutoMerge, as GitHub's GraphQL API documents it: 200
// with data, or 200 with errors.
func (g *GitHub) graphQL(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Query     string            `json:"query"`
		Variables map[string]string `json:"variables"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || !strings.Contains(in.Query, "enablePullRequestAutoMerge(input: {pullRequestId: $id, mergeMethod: $method, expectedHeadOid: $head})") {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"message":"Problems parsing JSON"}`)
		return
	}
	v := in.Variables
	g.autoMerges = append(g.autoMerges, AutoMergeCall{v["id"], v["method"], v["head"]})
	known := false
	for _, p := range g.pulls {
		known = known || p["node_id"] == v["id"]
	}
	switch {
	case !known:
		json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"enablePullRequestAutoMerge": nil},
			"errors": []map[string]any{{"type": "NOT_FOUND", "message": "Could not resolve to a node with the global id of '" + v["id"] + "'"}}})
	case g.AutoMergeRefusal != "":
		json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"enablePullRequestAutoMerge": nil},
			"errors": []map[string]any{{"type": "UNPROCESSABLE", "message": g.AutoMergeRefusal}}})
	default:
		json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"enablePullRequestAutoMerge": map[string]any{
			"pullRequest": map[string]any{"autoMergeRequest": map[string]any{"enabledAt": time.Now().UTC().Format(time.RFC3339)}}}}})
	}
}
