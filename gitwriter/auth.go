package gitwriter

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"

	"github.com/imagebutler/imagebutler/config"
)

// authFor builds the transport credentials of repo, reading secret files
// afresh so that rotated secrets take effect without a restart.
func authFor(repo config.Repository, log *slog.Logger) (transport.AuthMethod, error) {
	a := repo.Auth
	switch repo.Scheme() {
	case "https", "http":
		if a.Token != "" {
			return &githttp.BasicAuth{Username: a.Username, Password: a.Token}, nil
		}
		if a.TokenFile == "" {
			// Credentials written into the URL are sent as basic auth and
			// never kept in the URL that go-git stores.
			if _, user, password := config.SplitCredentials(repo.URL); user != "" || password != "" {
				return &githttp.BasicAuth{Username: user, Password: password}, nil
			}
			return nil, nil
		}
		token, err := os.ReadFile(a.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("reading auth.tokenFile: %w", err)
		}
		t := strings.TrimSpace(string(token))
		if t == "" {
			return nil, fmt.Errorf("auth.tokenFile %s is empty", a.TokenFile)
		}
		return &githttp.BasicAuth{Username: a.Username, Password: t}, nil
	case "ssh":
		user := sshUser(repo.URL)
		keys, err := gitssh.NewPublicKeysFromFile(user, a.SSHKeyFile, "")
		if err != nil {
			return nil, fmt.Errorf("reading auth.sshKeyFile %s: %w", a.SSHKeyFile, err)
		}
		if a.InsecureSkipHostKeyCheck {
			log.Warn("SSH host key verification is off (auth.insecureSkipHostKeyCheck: true)")
			keys.HostKeyCallback = ssh.InsecureIgnoreHostKey()
			return keys, nil
		}
		cb, err := gitssh.NewKnownHostsCallback(a.KnownHostsFile)
		if err != nil {
			return nil, fmt.Errorf("reading auth.knownHostsFile %s: %w", a.KnownHostsFile, err)
		}
		keys.HostKeyCallback = cb
		return keys, nil
	}
	return nil, nil
}

// sshUser is the user of an ssh:// or scp-like URL, "git" when it names none.
func sshUser(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Scheme == "ssh" {
		if u.User != nil && u.User.Username() != "" {
			return u.User.Username()
		}
		return "git"
	}
	if user, _, ok := strings.Cut(raw, "@"); ok && !strings.ContainsAny(user, "/:") {
		return user
	}
	return "git"
}

// scrub removes secrets from an error's text: the token and any password
// embedded in the URL.
func scrub(err error, auth transport.AuthMethod, rawURL string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	secrets := []string{}
	if b, ok := auth.(*githttp.BasicAuth); ok && b.Password != "" {
		secrets = append(secrets, b.Password)
	}
	if b, ok := auth.(*githttp.BasicAuth); ok && b.Username != "" && strings.Contains(rawURL, b.Username+"@") {
		secrets = append(secrets, b.Username) // a token written as the URL's user name
	}
	if _, user, password := config.SplitCredentials(rawURL); user != "" || password != "" {
		for _, s := range []string{user, password} {
			if len(s) >= 4 {
				secrets = append(secrets, s, url.QueryEscape(s), url.PathEscape(s))
			}
		}
	}
	changed := false
	for _, s := range secrets {
		if strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
			changed = true
		}
	}
	if !changed {
		return err
	}
	return &scrubbed{msg: msg, err: err}
}

// scrubbed keeps the chain for errors.Is while printing the cleaned text.
type scrubbed struct {
	msg string
	err error
}

func (s *scrubbed) Error() string { return s.msg }
func (s *scrubbed) Unwrap() error { return s.err }
