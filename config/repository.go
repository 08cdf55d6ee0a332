package config

import (
	"fmt"
	"net/url"
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

// Redact returns rawURL with any password replaced by "xxxxx". It keeps
// the user name, as git does when it prints a remote.
func Redact(rawURL string) string {
	if !strings.Contains(rawURL, "://") {
		return rawURL
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// Do not echo what could not be parsed: it may hold a password.
		if i := strings.Index(rawURL, "@"); i >= 0 {
			scheme, _, _ := strings.Cut(rawURL, "://")
			return scheme + "://xxxxx@" + rawURL[i+1:]
		}
		return rawURL
	}
	return u.Redacted()
}
