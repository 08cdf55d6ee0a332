// Package forge opens and updates the butler's pull requests through a git
// forge's API: GitHub (google/go-github), Gitea (code.gitea.io/sdk) and
// GitLab merge requests (gitlab.com/gitlab-org/api/client-go).
package forge

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/imagebutler/imagebutler/config"
)

// PullRequest is one pull request from the butler's branch.
type PullRequest struct {
	Number int64
	URL    string
	Title  string
	Body   string
	Open   bool
	Merged bool
	// Author is the login of whoever opened it.
	Author string
	// NodeID is GitHub's GraphQL id of the pull request ("" elsewhere).
	NodeID string
}

// State is how a pull request stands: "open", "merged" or "closed"
// (closed without merging).
func (p PullRequest) State() string {
	switch {
	case p.Open:
		return "open"
	case p.Merged:
		return "merged"
	}
	return "closed"
}

// Client is what the butler asks of a forge, for one repository.
type Client interface {
	// Pulls returns the pull requests from branch head of this same
	// repository (never a fork's branch of that name) into base, newest
	// first, at most MaxPulls: every page the forge's filter returns is
	// read, so other pull requests cannot push the butler's out of view.
	Pulls(ctx context.Context, head, base string) ([]PullRequest, error)
	// Self returns the login the token acts as: the author of the butler's
	// own pull requests.
	Self(ctx context.Context) (string, error)
	// Open opens a pull request from head into base with labels.
	Open(ctx context.Context, head, base, title, body string, labels []string) (PullRequest, error)
	// Update sets the title and body of pull request number.
	Update(ctx context.Context, number int64, title, body string) error
	// AutoMerge asks the forge to merge pr by method (merge, squash or
	// rebase) once its required checks pass, provided its head is still
	// head: a commit pushed after the butler's is never merged by this.
	// A forge's refusal (auto-merge not allowed on the repository, nothing
	// required to wait for, ...) is an AutoMergeResult, not an error.
	AutoMerge(ctx context.Context, pr PullRequest, head, method string) (AutoMergeResult, error)
}

// AutoMergeResult is what came of asking a forge to merge a pull request by
// itself.
type AutoMergeResult struct {
	// State is "enabled" (the forge merges it when its checks pass),
	// "merged" (nothing required was pending, so the forge merged it at
	// once), "refused", or "pending" (the forge is still taking the pull
	// request in: ask again later).
	State string
	// Reason is the forge's words, when it refused or is pending.
	Reason string
}

// MaxPulls is how many of the newest pull requests Pulls returns.
const MaxPulls = 20

// maxPages bounds the pages Pulls reads, whatever a forge answers.
const maxPages = 40

// New returns the client of repo's forge (repo.PullRequest must be set),
// authenticated with token, making its requests with hc (nil: a client
// with a 30s timeout).
func New(repo config.Repository, token string, hc *http.Client) (Client, error) {
	pr := repo.PullRequest
	if pr == nil {
		return nil, errors.New("the repository has no pullRequest settings")
	}
	owner, name, err := repo.OwnerAndRepo()
	if err != nil {
		return nil, err
	}
	hc = withTimeout(hc)
	var c Client
	switch pr.Provider {
	case "gitlab":
		project, err := repo.ProjectPath()
		if err != nil {
			return nil, err
		}
		if c, err = newGitLab(pr.APIURL, project, token, hc); err != nil {
			return nil, err
		}
	case "github":
		if c, err = newGitHub(pr.APIURL, owner, name, token, hc); err != nil {
			return nil, err
		}
	case "gitea":
		c = newGitea(pr.APIURL, owner, name, token, hc)
	default:
		return nil, fmt.Errorf("unknown pull request provider %q", pr.Provider)
	}
	return redacting{c, token}, nil
}

// redacting is a Client whose errors never hold its token: a forge's
// error body may echo the request (a 401 page quoting the Authorization
// header), and the error reaches logs, once's output and /status.
type redacting struct {
	Client
	token string
}

func (r redacting) Pulls(ctx context.Context, head, base string) ([]PullRequest, error) {
	p, err := r.Client.Pulls(ctx, head, base)
	return p, r.scrub(err)
}

func (r redacting) Self(ctx context.Context) (string, error) {
	s, err := r.Client.Self(ctx)
	return s, r.scrub(err)
}

func (r redacting) Open(ctx context.Context, head, base, title, body string, labels []string) (PullRequest, error) {
	p, err := r.Client.Open(ctx, head, base, title, body, labels)
	return p, r.scrub(err)
}

func (r redacting) Update(ctx context.Context, number int64, title, body string) error {
	return r.scrub(r.Client.Update(ctx, number, title, body))
}

func (r redacting) AutoMerge(ctx context.Context, pr PullRequest, head, method string) (AutoMergeResult, error) {
	a, err := r.Client.AutoMerge(ctx, pr, head, method)
	a.Reason = r.redact(a.Reason)
	return a, r.scrub(err)
}

// Redacted stands where a secret was.
const Redacted = "xxxxx"

// scrub replaces the token (as it is, and URL-escaped) in err's text.
func (r redacting) scrub(err error) error {
	if err == nil || len(r.token) < 4 || r.redact(err.Error()) == err.Error() {
		return err
	}
	var fe *Error
	if errors.As(err, &fe) && fe.Err != nil {
		c := *fe
		c.Err = errors.New(r.redact(fe.Err.Error()))
		if c.Error() == r.redact(c.Error()) {
			return &c
		}
	}
	return errors.New(r.redact(err.Error()))
}

func (r redacting) redact(s string) string {
	for _, t := range []string{r.token, url.QueryEscape(r.token), url.PathEscape(r.token)} {
		s = strings.ReplaceAll(s, t, Redacted)
	}
	return s
}

// Error is a forge's refusal, with what it means for the butler.
type Error struct {
	Provider string // github, gitea
	Repo     string // owner/name
	Op       string // what was asked: "listing pull requests", ...
	Status   int    // the HTTP status, or 0 when none came back
	// RetryAfter is how long the forge asked to wait (rate limits), or 0.
	RetryAfter time.Duration
	Hint       string
	Err        error
}

// Error says which forge refused what in which repository, and why.
func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: %s in %s", e.Provider, e.Op, e.Repo)
	if e.Status != 0 {
		msg += fmt.Sprintf(": HTTP %d", e.Status)
	}
	if e.Hint != "" {
		msg += ": " + e.Hint
	}
	if e.Err != nil {
		msg += ": " + clip(e.Err.Error())
	}
	return msg
}

// Unwrap returns the client library's error.
func (e *Error) Unwrap() error { return e.Err }

// RateLimited reports whether the forge asked to slow down.
func (e *Error) RateLimited() bool { return e.RetryAfter > 0 }

// classify turns a failed call's response into an Error that says what to
// do: a refused token, a missing permission (naming it), a repository the
// token cannot see, a rate limit (with when to retry).
func classify(provider, repo, op string, resp *http.Response, err error) error {
	e := &Error{Provider: provider, Repo: repo, Op: op, Err: err}
	if resp == nil {
		return e
	}
	e.Status = resp.StatusCode
	h := resp.Header
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		e.Hint = "the token was refused (expired, revoked or mistyped); the next cycle tries again"
	case (resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests) && (h.Get("X-RateLimit-Remaining") == "0" || h.Get("RateLimit-Remaining") == "0") && h.Get("Retry-After") == "":
		e.RetryAfter = time.Minute
		if reset, err := strconv.ParseInt(cmp.Or(h.Get("X-RateLimit-Reset"), h.Get("RateLimit-Reset")), 10, 64); err == nil {
			at := time.Unix(reset, 0)
			if d := time.Until(at); d > 0 {
				e.RetryAfter = d
			}
			e.Hint = "rate limited until " + at.UTC().Format(time.RFC3339) + "; the next cycle tries again"
		} else {
			e.Hint = "rate limited; the next cycle tries again"
		}
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusForbidden && h.Get("Retry-After") != "":
		e.RetryAfter = time.Minute
		if s, err := strconv.Atoi(h.Get("Retry-After")); err == nil && s > 0 {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		e.Hint = fmt.Sprintf("rate limited: retry after %s; the next cycle tries again", e.RetryAfter)
	case resp.StatusCode == http.StatusForbidden:
		e.Hint = "the token lacks a permission: " + permissions[provider]
	case resp.StatusCode == http.StatusNotFound:
		e.Hint = "no such repository, or the token cannot see it (" + permissions[provider] + ")"
	}
	return e
}

// permissions says, per forge, what the butler's token needs.
var permissions = map[string]string{
	"github": `a fine-grained token needs "Pull requests: read and write" and "Contents: read and write" on the repository (a classic token: the repo scope)`,
	"gitea":  `the token needs the write:repository scope (and write:issue for labels), and its user write access to the repository`,
	"gitlab": `the token needs the api scope, and its user (or the project or group token) at least the Developer role`,
}

// clip cuts a forge's message to 1 KiB: a forge's error body is no place
// for a megabyte.
func clip(s string) string {
	const max = 1024
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max], "") + "…"
}

// withTimeout is hc, or a client with a 30s timeout when hc is nil.
func withTimeout(hc *http.Client) *http.Client {
	if hc == nil {
		return &http.Client{Timeout: 30 * time.Second}
	}
	return hc
}
