// Package ghapp acts as a GitHub App installation: it signs the App's JWT
// with the App's private key, finds the App's installation on a repository
// when none is configured, and mints installation tokens, renewed a minute
// before they expire (bradleyfalzon/ghinstallation). The tokens are kept in
// memory only; no error this package returns holds one.
package ghapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v84/github"

	"github.com/imagebutler/imagebutler/config"
)

// Installation mints the tokens of one App installation, for one
// repository. It is safe for concurrent use.
type Installation struct {
	app         config.GitHubApp
	owner, repo string
	apps        *ghinstallation.AppsTransport

	mu     sync.Mutex
	id     int64                     // the installation, once known
	tokens *ghinstallation.Transport // nil until id is known
	login  string                    // the App's bot, once known
}

// Username is the user name git sends with an installation token.
const Username = "x-access-token"

// New reads the App's private key and returns the installation of app on
// owner/repo, whose REST API root is apiURL; tr makes the requests (nil:
// http.DefaultTransport). Nothing is asked of GitHub until Token.
func New(app config.GitHubApp, apiURL, owner, repo string, tr http.RoundTripper) (*Installation, error) {
	key, err := ReadKey(app.PrivateKeyFile)
	if err != nil {
		return nil, err
	}
	if tr == nil {
		tr = http.DefaultTransport
	}
	apps, err := ghinstallation.NewAppsTransport(tr, app.AppID, key)
	if err != nil {
		return nil, fmt.Errorf("auth.githubApp.privateKeyFile %s: not an RSA private key in PEM, as GitHub gives it", app.PrivateKeyFile)
	}
	apps.BaseURL = strings.TrimRight(apiURL, "/")
	return &Installation{app: app, owner: owner, repo: repo, apps: apps, id: app.InstallationID}, nil
}

// ReadKey reads an App's private key file and checks that it holds an RSA
// key in PEM (so that a broken one is a configuration error at start).
func ReadKey(file string) ([]byte, error) {
	key, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading auth.githubApp.privateKeyFile: %w", err)
	}
	if _, err := ghinstallation.NewAppsTransport(http.DefaultTransport, 1, key); err != nil {
		return nil, fmt.Errorf("auth.githubApp.privateKeyFile %s: not an RSA private key in PEM, as GitHub gives it", file)
	}
	return key, nil
}

// Token returns an installation token valid for at least a minute more,
// minting one when there is none or it is about to expire.
func (i *Installation) Token(ctx context.Context) (string, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.tokens == nil {
		if i.id == 0 {
			id, err := i.find(ctx)
			if err != nil {
				return "", err
			}
			i.id = id
		}
		i.tokens = ghinstallation.NewFromAppsTransport(i.apps, i.id)
	}
	t, err := i.tokens.Token(ctx)
	if err != nil {
		return "", i.fail("minting an installation token", err)
	}
	return t, nil
}

// Login is the login of the App's bot, "<slug>[bot]": the author of what
// its installation tokens open (GitHub answers 403 to GET /user for such a
// token). It is asked of GitHub once (GET /app, with the App's JWT).
func (i *Installation) Login(ctx context.Context) (string, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.login != "" {
		return i.login, nil
	}
	c, err := i.appClient()
	if err != nil {
		return "", err
	}
	app, resp, err := c.Apps.Get(ctx, "")
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return "", fmt.Errorf("GitHub App %d: reading the App: HTTP %d: %w", i.app.AppID, status, err)
	}
	if app.GetSlug() == "" {
		return "", fmt.Errorf("GitHub App %d: GitHub gave no slug for the App", i.app.AppID)
	}
	i.login = app.GetSlug() + "[bot]"
	return i.login, nil
}

// appClient is a go-github client that authenticates as the App (JWT).
func (i *Installation) appClient() (*github.Client, error) {
	c := github.NewClient(&http.Client{Transport: i.apps})
	base, err := url.Parse(i.apps.BaseURL + "/")
	if err != nil {
		return nil, fmt.Errorf("GitHub App %d: %w", i.app.AppID, err)
	}
	c.BaseURL = base
	return c, nil
}

// find looks up the App's installation on the repository (with the App's
// JWT: GET /repos/{owner}/{repo}/installation).
func (i *Installation) find(ctx context.Context) (int64, error) {
	c, err := i.appClient()
	if err != nil {
		return 0, err
	}
	inst, resp, err := c.Apps.FindRepositoryInstallation(ctx, i.owner, i.repo)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		switch status {
		case http.StatusNotFound:
			return 0, fmt.Errorf("GitHub App %d is not installed on %s/%s: install it on the repository (or set auth.githubApp.installationID)", i.app.AppID, i.owner, i.repo)
		case http.StatusUnauthorized:
			return 0, fmt.Errorf("GitHub App %d: finding its installation on %s/%s: HTTP 401: the App's JWT was refused: auth.githubApp.privateKeyFile is not this App's key, or appID is not its id", i.app.AppID, i.owner, i.repo)
		}
		return 0, fmt.Errorf("GitHub App %d: finding its installation on %s/%s: %w", i.app.AppID, i.owner, i.repo, err)
	}
	return inst.GetID(), nil
}

// fail says what GitHub refused, naming the App and the installation, with
// what to do.
func (i *Installation) fail(op string, err error) error {
	prefix := fmt.Sprintf("GitHub App %d, installation %d: %s", i.app.AppID, i.id, op)
	var he *ghinstallation.HTTPError
	if !errors.As(err, &he) || he.Response == nil {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	resp := he.Response
	var body struct {
		Message string `json:"message"`
	}
	if resp.Body != nil {
		json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
		resp.Body.Close()
	}
	msg := fmt.Sprintf("%s: HTTP %d", prefix, resp.StatusCode)
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		msg += ": the App's JWT was refused: auth.githubApp.privateKeyFile is not this App's key, or appID is not its id"
	case http.StatusNotFound:
		msg += ": no such installation of the App: it was uninstalled, or installationID is wrong; reinstall the App (or fix auth.githubApp.installationID)"
	case http.StatusForbidden:
		msg += ": the installation is suspended, or the App may not mint tokens for it"
	}
	if body.Message != "" {
		msg += " (GitHub: " + body.Message + ")"
	}
	return errors.New(msg)
}
