package events

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/imagebutler/imagebutler/config"
)

// MaxWebhookBody is the largest webhook delivery read; larger ones get 413.
const MaxWebhookBody = 1 << 20

// Webhook serves POST /hooks/git: a push to a configured repository's
// branch, delivered by GitHub (X-Hub-Signature-256, HMAC-SHA256 of the
// body), GitLab (X-Gitlab-Token) or any sender with Authorization: Bearer,
// triggers a targeted pass over that repository. Deliveries without a
// valid signature or token get 401; bodies over 1 MiB get 413; a flood of
// deliveries becomes at most the dispatcher's passes per minute.
type Webhook struct {
	repos      []config.Repository
	secretFile string
	dispatch   *Dispatcher
	metrics    *Metrics
	log        *slog.Logger
}

// NewWebhook returns the handler for repos, with the shared secret read
// from secretFile at each delivery (so a rotated secret needs no restart).
func NewWebhook(repos []config.Repository, secretFile string, d *Dispatcher, m *Metrics, log *slog.Logger) *Webhook {
	return &Webhook{repos: repos, secretFile: secretFile, dispatch: d, metrics: m, log: log}
}

// pushPayload holds the fields of GitHub's, Gitea's and GitLab's push
// payloads that name the repository and branch.
type pushPayload struct {
	Ref        string `json:"ref"`
	Repository struct {
		CloneURL string `json:"clone_url"`
		SSHURL   string `json:"ssh_url"`
		HTMLURL  string `json:"html_url"`
		GitHTTP  string `json:"git_http_url"`
		GitSSH   string `json:"git_ssh_url"`
		URL      string `json:"url"`
	} `json:"repository"`
	Project struct {
		GitHTTP string `json:"git_http_url"`
		GitSSH  string `json:"git_ssh_url"`
		WebURL  string `json:"web_url"`
	} `json:"project"`
}

func (p pushPayload) urls() []string {
	r := p.Repository
	return []string{r.CloneURL, r.SSHURL, r.HTMLURL, r.GitHTTP, r.GitSSH, r.URL, p.Project.GitHTTP, p.Project.GitSSH, p.Project.WebURL}
}

// ServeHTTP handles one delivery.
func (h *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := Record{Time: time.Now(), Source: SourceWebhook}
	reply := func(code int, outcome, detail string) {
		rec.Outcome, rec.Detail = outcome, detail
		h.metrics.record(rec)
		http.Error(w, detail, code)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWebhookBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		reply(http.StatusRequestEntityTooLarge, OutcomeTooLarge, "body over 1 MiB")
		return
	case err != nil:
		reply(http.StatusBadRequest, OutcomeInvalid, "reading the body failed")
		return
	}
	secret, err := os.ReadFile(h.secretFile)
	secret = bytes.TrimSpace(secret)
	if err != nil || len(secret) == 0 {
		h.log.Error("webhook secret unreadable or empty; every delivery is refused", "file", h.secretFile)
		reply(http.StatusInternalServerError, OutcomeUnauthorized, "webhook secret not available")
		return
	}
	if !authentic(r.Header, body, secret) {
		reply(http.StatusUnauthorized, OutcomeUnauthorized, "no valid X-Hub-Signature-256, X-Gitlab-Token or bearer token")
		return
	}
	if event := r.Header.Get("X-GitHub-Event"); event != "" && event != "push" {
		reply(http.StatusOK, OutcomeIgnored, "event "+clipField(event)+" ignored")
		return
	}
	if event := r.Header.Get("X-Gitlab-Event"); event != "" && event != "Push Hook" {
		reply(http.StatusOK, OutcomeIgnored, "event "+clipField(event)+" ignored")
		return
	}
	var p pushPayload
	if err := json.Unmarshal(body, &p); err != nil {
		reply(http.StatusBadRequest, OutcomeInvalid, "the body is not a push payload")
		return
	}
	branch, ok := strings.CutPrefix(p.Ref, "refs/heads/")
	if !ok {
		reply(http.StatusOK, OutcomeIgnored, "not a branch push")
		return
	}
	var matched []string
	for _, repo := range h.repos {
		if repo.Branch != branch {
			continue
		}
		for _, u := range p.urls() {
			if u != "" && SameRepository(u, repo.URL) {
				matched = append(matched, repo.Name())
				break
			}
		}
	}
	if len(matched) == 0 {
		reply(http.StatusOK, OutcomeIgnored, "no configured repository and branch")
		return
	}
	rec.Subject = strings.Join(matched, ", ") + " " + branch
	for _, name := range matched {
		h.dispatch.Trigger(name, nil, rec.Time)
	}
	rec.Outcome = OutcomeAccepted
	h.metrics.record(rec)
	w.WriteHeader(http.StatusAccepted)
	io.WriteString(w, "pass due for "+rec.Subject+"\n")
}

// authentic reports whether the delivery carries a valid GitHub signature,
// GitLab token or bearer token, compared in constant time.
func authentic(hdr http.Header, body, secret []byte) bool {
	if sig := hdr.Get("X-Hub-Signature-256"); sig != "" {
		got, err := hex.DecodeString(strings.TrimPrefix(sig, "sha256="))
		if err != nil || !strings.HasPrefix(sig, "sha256=") {
			return false
		}
		mac := hmac.New(sha256.New, secret)
		mac.Write(body)
		return hmac.Equal(got, mac.Sum(nil))
	}
	if tok := hdr.Get("X-Gitlab-Token"); tok != "" {
		return subtle.ConstantTimeCompare([]byte(tok), secret) == 1
	}
	if tok, ok := strings.CutPrefix(hdr.Get("Authorization"), "Bearer "); ok && tok != "" {
		return subtle.ConstantTimeCompare([]byte(tok), secret) == 1
	}
	return false
}

// SameRepository reports whether two git URLs name the same repository:
// scheme, credentials, port of the default kind, a ".git" suffix, a
// trailing slash and the host's case aside; scp-like SSH URLs
// (git@host:org/repo) compare as host/org/repo.
func SameRepository(a, b string) bool {
	ka, oka := repoKey(a)
	kb, okb := repoKey(b)
	return oka && okb && ka == kb
}

func repoKey(raw string) (string, bool) {
	if !strings.Contains(raw, "://") {
		// scp-like: [user@]host:path
		at := strings.LastIndex(raw, "@")
		host, path, ok := strings.Cut(raw[at+1:], ":")
		if !ok || host == "" {
			return "", false
		}
		return strings.ToLower(host) + "/" + cleanPath(path), true
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", false
	}
	return strings.ToLower(u.Hostname()) + "/" + cleanPath(u.Path), true
}

func cleanPath(p string) string {
	p = strings.Trim(p, "/")
	p = strings.TrimSuffix(p, ".git")
	return strings.ToLower(p)
}
