// Package forgetest provides a stand-in for GitHub's REST API, for tests:
// the real service cannot be reached from where the tests run, so the
// calls the butler makes (list, create and edit pull requests, label an
// issue) are answered as GitHub documents them, and driven through the real
// client library (google/go-github).
package forgetest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v4"
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
	// Bare, when set, is the bare repository GitHub's Git Data API (blobs,
	// trees, commits, refs) writes to and reads from.
	Bare string
	// BeforeRefUpdate, when set, runs before each ref update (PATCH)
	// is answered: a test moves the branch there, as a person might.
	BeforeRefUpdate func()

	commitsMade, refUpdates, refusedUpdates int

	// App, when set, makes the stand-in a GitHub App's API too: a JWT the
	// App's key signed mints installation tokens, which then act as Token
	// does.
	App *App
}

// App is a GitHub App installed on the stand-in's repository.
type App struct {
	ID, InstallationID int64
	// Slug is the App's URL name; its bot is "<slug>[bot]". Default
	// "imagebutler-test".
	Slug string
	// Key is the public half of the App's private key.
	Key *rsa.PublicKey
	// TokenTTL is how long an installation token lives; default an hour,
	// as on GitHub.
	TokenTTL time.Duration

	revoked bool
	minted  []minted
}

func (a *App) slug() string {
	if a.Slug == "" {
		return "imagebutler-test"
	}
	return a.Slug
}

type minted struct {
	token   string
	expires time.Time
}

// Revoke uninstalls the App: its JWT still authenticates, but the
// installation is gone (404) and every token it minted is refused.
func (g *GitHub) Revoke() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.App.revoked = true
}

// Minted returns the installation tokens minted so far, oldest first.
func (g *GitHub) Minted() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, m := range g.App.minted {
		out = append(out, m.token)
	}
	return out
}

// ValidToken says whether token is Token, or an installation token the App
// minted that has neither expired nor been revoked: what a git server in
// front of the repository accepts.
func (g *GitHub) ValidToken(token string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.validToken(token)
}

func (g *GitHub) validToken(token string) bool {
	if g.Token != "" && token == g.Token {
		return true
	}
	if g.App == nil || g.App.revoked {
		return false
	}
	for _, m := range g.App.minted {
		if m.token == token && time.Now().Before(m.expires) {
			return true
		}
	}
	return false
}

// appJWT checks the request's JWT as GitHub does: RS256, signed by the
// App's key, issued by its id, expiring at most 10 minutes after issue and
// not yet expired.
func (g *GitHub) appJWT(r *http.Request) bool {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || g.App == nil {
		return false
	}
	var claims jwt.RegisteredClaims
	tok, err := jwt.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		if t.Method != jwt.SigningMethodRS256 {
			return nil, fmt.Errorf("unexpected method %v", t.Method.Alg())
		}
		return g.App.Key, nil
	})
	if err != nil || !tok.Valid || claims.Issuer != strconv.FormatInt(g.App.ID, 10) || claims.IssuedAt == nil || claims.ExpiresAt == nil {
		return false
	}
	return claims.ExpiresAt.Sub(claims.IssuedAt.Time) <= 10*time.Minute
}

// serveApp answers the App's own calls (JWT-authenticated); false when r
// is not one.
func (g *GitHub) serveApp(w http.ResponseWriter, r *http.Request) bool {
	if g.App == nil {
		return false
	}
	a := g.App
	path := r.URL.Path
	tokensPath := fmt.Sprintf("/app/installations/%d/access_tokens", a.InstallationID)
	isTokens := r.Method == http.MethodPost && strings.HasPrefix(path, "/app/installations/") && strings.HasSuffix(path, "/access_tokens")
	isFind := r.Method == http.MethodGet && strings.HasPrefix(path, "/repos/") && strings.HasSuffix(path, "/installation")
	isApp := r.Method == http.MethodGet && path == "/app"
	if !isTokens && !isFind && !isApp {
		return false
	}
	w.Header().Set("Content-Type", "application/json")
	if !g.appJWT(r) {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"message":"A JSON web token could not be decoded","documentation_url":"https://docs.github.com/rest"}`)
		return true
	}
	if (a.revoked && !isApp) || (isTokens && path != tokensPath) || (isFind && path != "/repos/"+g.Owner+"/"+g.Repo+"/installation") {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"message":"Not Found","documentation_url":"https://docs.github.com/rest"}`)
		return true
	}
	if isFind {
		json.NewEncoder(w).Encode(map[string]any{"id": a.InstallationID, "app_id": a.ID, "account": map[string]any{"login": g.Owner}})
		return true
	}
	if isApp {
		json.NewEncoder(w).Encode(map[string]any{"id": a.ID, "slug": a.slug(), "name": a.slug()})
		return true
	}
	ttl := a.TokenTTL
	if ttl == 0 {
		ttl = time.Hour
	}
	b := make([]byte, 18)
	rand.Read(b)
	m := minted{token: "ghs_" + hex.EncodeToString(b), expires: time.Now().Add(ttl).Truncate(time.Second)}
	a.minted = append(a.minted, m)
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]any{"token": m.token, "expires_at": m.expires.UTC().Format(time.RFC3339),
		"permissions": map[string]string{"contents": "write", "pull_requests": "write"}, "repository_selection": "selected"})
	return true
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

// loginOf is who the request's token acts as: the App's bot for an
// installation token.
func (g *GitHub) loginOf(r *http.Request) string {
	if g.App != nil && r.Header.Get("Authorization") != "Bearer "+g.Token {
		return g.App.slug() + "[bot]"
	}
	return g.login()
}

// ServeHTTP answers one API request.
func (g *GitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.Fail != nil && g.Fail(w, r) {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.serveApp(w, r) {
		return
	}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); !ok || !g.validToken(tok) {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}`)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	prefix := "/repos/" + g.Owner + "/" + g.Repo
	path := r.URL.Path
	switch {
	case r.Method == http.MethodGet && path == "/user" && r.Header.Get("Authorization") != "Bearer "+g.Token:
		// An installation token is no user's.
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"message":"Resource not accessible by integration","documentation_url":"https://docs.github.com/rest/users/users#get-the-authenticated-user"}`)
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
			"user":     map[string]any{"login": g.loginOf(r)},
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
	case g.gitData(w, r, prefix):
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
