package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"
)

// scpLikeRE matches git's scp-like SSH syntax, user@host:path.
var scpLikeRE = regexp.MustCompile(`^(?:[^@/\s]+@)?[A-Za-z0-9.\-]+:[^/]`)

// Scheme returns how the repository is reached: "https", "http", "ssh",
// "file", or "" when the URL is not one git understands.
func (r Repository) Scheme() string {
	u := r.URL
	switch {
	case u == "":
		return ""
	case strings.HasPrefix(u, "https://"):
		return "https"
	case strings.HasPrefix(u, "http://"):
		return "http"
	case strings.HasPrefix(u, "ssh://"):
		return "ssh"
	case strings.HasPrefix(u, "file://"), strings.HasPrefix(u, "/"), strings.HasPrefix(u, "./"), strings.HasPrefix(u, "../"):
		return "file"
	case strings.Contains(u, "://"):
		return ""
	case scpLikeRE.MatchString(u):
		return "ssh"
	case hostPathRE.MatchString(u):
		return "" // github.com/org/repo.git: a URL missing its scheme, not a path
	}
	return "file"
}

// hostPathRE matches a host name followed by a path, with no scheme:
// github.com/org/repo.git. A local folder of that shape is written ./x.com/y.
var hostPathRE = regexp.MustCompile(`^[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?::[0-9]+)?/`)

// urlProblem says what is wrong with a URL Scheme does not accept, and how
// to fix it.
func urlProblem(rawURL string) string {
	u := Redact(rawURL)
	switch {
	case strings.HasPrefix(rawURL, "git://"):
		return fmt.Sprintf("%q uses git://, a read-only protocol; use https:// or ssh://", u)
	case hostPathRE.MatchString(rawURL):
		return fmt.Sprintf("%q has no scheme; write https://%s (or ssh://git@%s for SSH)", u, u, u)
	}
	return fmt.Sprintf("%q is not a git URL (https://, http://, ssh://, git@host:path, file:// or a path)", u)
}

// Name is how the repository is named in logs, status and errors: its URL
// without credentials, and its branch.
func (r Repository) Name() string {
	return Redact(r.URL) + "@" + r.Branch
}

// Redact returns rawURL without its credentials, for logs, errors, status,
// metric labels and commit messages. Over http(s) every user name is taken
// for a secret (https://TOKEN@host is how GitHub documents tokens), so the
// whole user part becomes "xxxxx"; an SSH user stays (it is no secret) and
// its password goes. It never parses the URL, so a password holding '@',
// '%' or '/' cannot make it print part of itself.
func Redact(rawURL string) string {
	scheme, _, user, password, hostAndPath, ok := splitUserinfo(rawURL)
	switch {
	case !ok:
		return rawURL
	case scheme == "ssh" && password == "":
		return rawURL
	case scheme == "ssh":
		return scheme + "://" + user + ":xxxxx@" + hostAndPath
	}
	return scheme + "://xxxxx@" + hostAndPath
}

// SplitCredentials returns rawURL with the credentials of an http(s) URL
// taken out (so that git never stores them), and the user name and password
// it held, unescaped. Other URLs come back as they are.
func SplitCredentials(rawURL string) (clean, user, password string) {
	scheme, _, u, p, hostAndPath, ok := splitUserinfo(rawURL)
	if !ok || (scheme != "https" && scheme != "http") {
		return rawURL, "", ""
	}
	if v, err := url.PathUnescape(u); err == nil {
		u = v
	}
	if v, err := url.PathUnescape(p); err == nil {
		p = v
	}
	return scheme + "://" + hostAndPath, u, p
}

// splitUserinfo cuts scheme://user:password@host/path at the last '@' of
// the authority (everything before the first '/', '?' or '#' after it that
// follows the last '@'). ok is false when there is no scheme or no '@'.
func splitUserinfo(rawURL string) (scheme, rest, user, password, hostAndPath string, ok bool) {
	scheme, rest, found := strings.Cut(rawURL, "://")
	if !found {
		return "", "", "", "", "", false
	}
	// The authority ends at the first '/', '?' or '#' after its last '@':
	// a password may hold '/' or '#', a host may not hold '@'.
	at := -1
	for i := 0; i < len(rest); i++ {
		if rest[i] == '@' {
			at = i
		}
		if (rest[i] == '/' || rest[i] == '?' || rest[i] == '#') && at >= 0 && !strings.Contains(rest[i:], "@") {
			break
		}
	}
	if at < 0 {
		return "", "", "", "", "", false
	}
	user, password, _ = strings.Cut(rest[:at], ":")
	if strings.ContainsAny(user, "/?#") {
		return "", "", "", "", "", false // an '@' in the path, not credentials
	}
	return scheme, rest, user, password, rest[at+1:], true
}

// WorkDirName is the name of the repository's working copy under stateDir:
// the URL's last part (without credentials) and a hash of the URL and push
// branch. Load refuses two repositories whose names collide.
func (r Repository) WorkDirName() string {
	sum := sha256.Sum256([]byte(r.URL + "\x00" + r.PushBranch))
	base := strings.TrimSuffix(path.Base(strings.TrimRight(Redact(r.URL), "/")), ".git")
	base = unsafeChars.ReplaceAllString(base, "_")
	return base + "-" + hex.EncodeToString(sum[:6])
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)
