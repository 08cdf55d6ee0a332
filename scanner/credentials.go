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

// credentials returns repo with this cycle's token in Auth.Token: with
// auth.githubApp, an installation token (kept and renewed by the App's
// Installation, one per repository for the scanner's life); with
// auth.tokenFile, the file's content. SSH keys are read where they are used.
func (s *Scanner) credentials(ctx context.Context, repo config.Repository) (config.Repository, error) {
	app := repo.Auth.GitHubApp
	if app == nil {
		if repo.Auth.TokenFile == "" {
			return repo, nil
		}
		// Read once per cycle, for git, the forge and the commit API alike
		// (a rotated token takes effect at the next cycle).
		b, err := os.ReadFile(repo.Auth.TokenFile)
		if err != nil {
			return repo, fmt.Errorf("reading auth.tokenFile: %w", err)
		}
		repo.Auth.Token = strings.TrimSpace(string(b))
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
	owner, name, err := repo.OwnerAndRepo()
	if err != nil {
		return err
	}
	api, err := forge.NewGitHubCommits(repo.GitHubAPIURL(), owner, name, repo.Auth.Token, nil)
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
