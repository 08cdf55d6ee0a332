package scanner

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/forge"
	"github.com/imagebutler/imagebutler/ghapp"
	"github.com/imagebutler/imagebutler/gitwriter"
)

// credentials returns repo with the token minted for it this cycle: with
// auth.githubApp, an installation token (kept and renewed by the App's
// Installation, one per repository for the scanner's life). Other
// repositories come back as they are; their secrets are read from files
// where they are used.
func (s *Scanner) credentials(ctx context.Context, repo config.Repository) (config.Repository, error) {
	app := repo.Auth.GitHubApp
	if app == nil {
		return repo, nil
	}
	s.appMu.Lock()
	inst, ok := s.apps[repo.Name()]
	if !ok {
		owner, name, err := repo.OwnerAndRepo()
		if err == nil {
			inst, err = ghapp.New(*app, app.APIURL(repo), owner, name, nil)
		}
		if err != nil {
			s.appMu.Unlock()
			return repo, err
		}
		if s.apps == nil {
			s.apps = map[string]*ghapp.Installation{}
		}
		s.apps[repo.Name()] = inst
	}
	s.appMu.Unlock()
	token, err := inst.Token(ctx)
	if err != nil {
		return repo, err
	}
	repo.Auth.Token, repo.Auth.Username = token, ghapp.Username
	return repo, nil
}

// useCommitAPI makes co's commits go through GitHub's API when repo's
// commitMethod is api (with this cycle's token), through git otherwise.
func useCommitAPI(co *gitwriter.Checkout, repo config.Repository) error {
	if repo.CommitMethod != "api" {
		co.UseAPI(nil)
		return nil
	}
	token := repo.Auth.Token
	if token == "" {
		b, err := os.ReadFile(repo.Auth.TokenFile)
		if err != nil {
			return fmt.Errorf("reading auth.tokenFile for commitMethod api: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	owner, name, err := repo.OwnerAndRepo()
	if err != nil {
		return err
	}
	api, err := forge.NewGitHubCommits(repo.GitHubAPIURL(), owner, name, token, nil)
	if err != nil {
		return err
	}
	co.UseAPI(api)
	return nil
}

// self is the login the butler's pull requests are opened by: a GitHub
// App's bot, or the token's user as the forge says.
func (s *Scanner) self(ctx context.Context, client forge.Client, repo config.Repository) (string, error) {
	s.appMu.Lock()
	inst := s.apps[repo.Name()]
	s.appMu.Unlock()
	if inst != nil {
		return inst.Login(ctx)
	}
	return client.Self(ctx)
}
