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
	"sync"
	"time"

	"github.com/imagebutler/imagebutler/config"
)

// MaxWebhookBody is the largest webhook delivery read; larger ones get 413.
const MaxWebhookBody = 1 << 20

// Limits of the webhook against senders who are not the forge.
const (
	// MaxDeliveries is how many deliveries are read and handled at once;
	// more get 503 at once, without a byte of their body read.
	MaxDeliveries = 8
	// DeliveryReadTimeout bounds the reading of one delivery's body: a
	// sender that stalls is cut off.
	DeliveryReadTimeout = 10 * time.Second
	// deliveriesKept is how many delivery ids are remembered, for an hour.
	deliveriesKept = 10_000
)

// Webhook serves POST /hooks/git: a push to a configured repository's
// branch, delivered by GitHub or Gitea (X-Hub-Signature-256, HMAC-SHA256 of
// the body), GitLab (X-Gitlab-Token) or any sender with Authorization:
// Bearer, triggers a targeted pass over that repository.
//
// What a sender without the secret costs is bounded: a delivery that
// brings no signature or token (or a wrong token) gets 401 before its body
// is read; at most MaxDeliveries are read at once (more get 503), each for
// at most DeliveryReadTimeout and MaxWebhookBody (413). Only authenticated
// deliveries are kept for /status (the others are counted), and a delivery
// id (X-GitHub-Delivery, X-Gitea-Delivery, X-Gitlab-Event-UUID) seen in the
// last hour is not acted on twice. A flood of valid deliveries becomes at
// most the dispatcher's passes per minute.
type Webhook struct {
	repos      []config.Repository
	secretFile string
	dispatch   *Dispatcher
	metrics    *Metrics
	log        *slog.Logger
	slots      chan struct{}
	// readTimeout is DeliveryReadTimeout; tests shorten it.
	readTimeout time.Duration

	mu   sync.Mutex
	seen map[string]time.Time // delivery id → when it was handled
}

// NewWebhook returns the handler for repos, with the shared secret read
// from secretFile at each delivery (so a rotated secret needs no restart).
func NewWebhook(repos []config.Repository, secretFile string, d *Dispatcher, m *Metrics, log *slog.Logger) *Webhook {
	return &Webhook{repos: repos, secretFile: secretFile, dispatch: d, metrics: m, log: log,
		slots: make(chan struct{}, MaxDeliveries), readTimeout: DeliveryReadTimeout, seen: map[string]time.Time{}}
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
	// refuse answers a delivery not known to come from the forge: counted,
	// not kept for /status, where anyone could otherwise push out the
	// real events.
	refuse := func(code int, outcome, detail string) {
		rec.Outcome = outcome
		h.metrics.count(rec)
		http.Error(w, detail, code)
	}
	reply := func(code int, outcome, detail string) {
		rec.Outcome, rec.Detail = outcome, detail
		h.metrics.record(rec)
		http.Error(w, detail, code)
	}
	const unauthorized = "no valid X-Hub-Signature-256, X-Gitlab-Token or bearer token"
	signature, token := credentials(r.Header)
	if signature == nil && token == "" {
		refuse(http.StatusUnauthorized, OutcomeUnauthorized, unauthorized)
		return
	}
	secret, err := os.ReadFile(h.secretFile)
	secret = bytes.TrimSpace(secret)
	if err != nil || len(secret) == 0 {
		h.log.Error("webhook secret unreadable or empty; every delivery is refused", "file", h.secretFile)
		refuse(http.StatusInternalServerError, OutcomeUnauthorized, "webhook secret not available")
		return
	}
	if token != "" && subtle.ConstantTimeCompare([]byte(token), secret) != 1 {
		refuse(http.StatusUnauthorized, OutcomeUnauthorized, unauthorized)
		return
	}
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		w.Header().Set("Retry-After", "10")
		refuse(http.StatusServiceUnavailable, OutcomeBusy, "too many deliveries at once; try again later")
		return
	}
	if r.ContentLength > MaxWebhookBody {
		refuse(http.StatusRequestEntityTooLarge, OutcomeTooLarge, "body over 1 MiB")
		return
	}
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(h.readTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWebhookBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		refuse(http.StatusRequestEntityTooLarge, OutcomeTooLarge, "body over 1 MiB")
		return
	case err != nil:
		refuse(http.StatusBadRequest, OutcomeInvalid, "reading the body failed")
		return
	}
	if signature != nil {
		mac := hmac.New(sha256.New, secret)
		mac.Write(body)
		if !hmac.Equal(signature, mac.Sum(nil)) {
			refuse(http.StatusUnauthorized, OutcomeUnauthorized, unauthorized)
			return
		}
	}
	// Authenticated: from here on, the delivery is the forge's.
	if id := deliveryID(r.Header); id != "" && h.handledBefore(id, rec.Time) {
		reply(http.StatusOK, OutcomeDuplicate, "delivery "+clipField(id)+" was handled already")
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

// credentials reads what a delivery brings to prove it is the forge's,
// before any of its body: a GitHub or Gitea signature (the HMAC-SHA256 it
// claims, checked against the body later), or a GitLab or bearer token
// (checked at once). A malformed signature header counts as none.
func credentials(hdr http.Header) (signature []byte, token string) {
	if sig := hdr.Get("X-Hub-Signature-256"); sig != "" {
		hexSig, ok := strings.CutPrefix(sig, "sha256=")
		got, err := hex.DecodeString(hexSig)
		if !ok || err != nil || len(got) != sha256.Size {
			return nil, ""
		}
		return got, ""
	}
	if tok := hdr.Get("X-Gitlab-Token"); tok != "" {
		return nil, tok
	}
	if tok, ok := strings.CutPrefix(hdr.Get("Authorization"), "Bearer "); ok && tok != "" {
		return nil, tok
	}
	return nil, ""
}

// deliveryID is the forge's id of a delivery, or "".
func deliveryID(hdr http.Header) string {
	for _, k := range []string{"X-GitHub-Delivery", "X-Gitea-Delivery", "X-Gitlab-Event-UUID"} {
		if id := hdr.Get(k); id != "" {
			return k + " " + id
		}
	}
	return ""
}

// handledBefore reports whether delivery id was handled in the hour before
// now, and remembers it (at most deliveriesKept ids, the oldest forgotten
// first).
func (h *Webhook) handledBefore(id string, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if at, ok := h.seen[id]; ok && now.Sub(at) < time.Hour {
		return true
	}
	if len(h.seen) >= deliveriesKept {
		oldest, oldestAt := "", now
		for k, at := range h.seen {
			if now.Sub(at) >= time.Hour {
				delete(h.seen, k)
			} else if at.Before(oldestAt) {
				oldest, oldestAt = k, at
			}
		}
		if len(h.seen) >= deliveriesKept {
			delete(h.seen, oldest)
		}
	}
	h.seen[id] = now
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
