package config

import (
	"net/url"
	"strings"
)

// APIURL is the REST API root the App's tokens are minted at: BaseURL, else
// the repository's GitHub API root.
func (a *GitHubApp) APIURL(r Repository) string {
	if a.BaseURL != "" {
		return a.BaseURL
	}
	return r.GitHubAPIURL()
}

// GitHubAPIURL is the repository's GitHub REST API root: the App's
// baseURL, else the pull request's apiURL, else the one the URL's host
// implies (https://api.github.com/ for github.com, https://HOST/api/v3/
// for GitHub Enterprise Server).
func (r Repository) GitHubAPIURL() string {
	switch {
	case r.Auth.GitHubApp != nil && r.Auth.GitHubApp.BaseURL != "":
		return r.Auth.GitHubApp.BaseURL
	case r.PullRequest != nil && r.PullRequest.APIURL != "":
		return r.PullRequest.APIURL
	}
	return defaultAPIURL("github", r.URL)
}

// CommitMethods are the values of repositories[].commitMethod.
var CommitMethods = []string{"git", "api"}

func (r Repository) validateCommitMethod(p *problems, c *Config, field string, at func(keys ...any) int) {
	switch r.CommitMethod {
	case "", "git":
		return
	case "api":
	default:
		p.add(at("commitMethod"), field+".commitMethod", "must be one of %s, got %q", strings.Join(CommitMethods, ", "), r.CommitMethod)
		return
	}
	if r.PullRequest != nil && r.PullRequest.Provider != "github" {
		p.add(at("commitMethod"), field+".commitMethod", "api is GitHub's Git Data API; this repository's pull requests go to %s", r.PullRequest.Provider)
	}
	if r.Auth.TokenFile == "" && r.Auth.GitHubApp == nil {
		p.add(at("commitMethod"), field+".commitMethod", "api needs GitHub's token: auth.githubApp (whose commits GitHub shows as verified) or auth.tokenFile")
	}
	if s := r.Scheme(); s != "https" && s != "http" {
		p.add(at("commitMethod"), field+".commitMethod", "api needs an https:// URL on GitHub (the butler still fetches with git)")
	}
	if c.Git.SigningKey() != nil {
		p.add(at("commitMethod"), field+".commitMethod", "api and git.signing exclude each other: GitHub signs the commits an App makes through its API")
	}
	if u, err := url.Parse(r.GitHubAPIURL()); err != nil || u.Host == "" {
		p.add(at("commitMethod"), field+".commitMethod", "api needs GitHub's API root: set pullRequest.apiURL or auth.githubApp.baseURL")
	}
}

func (a *GitHubApp) validate(p *problems, r Repository, field string, at func(keys ...any) int) {
	if r.Auth.TokenFile != "" {
		p.add(at(), field, "and auth.tokenFile exclude each other: the App's installation tokens are the token")
	}
	if a.AppID <= 0 {
		p.add(at("appID"), field+".appID", "must be the App's id (a positive number, its settings page's \"App ID\")")
	}
	if a.InstallationID < 0 {
		p.add(at("installationID"), field+".installationID", "must be positive, or left out to look it up from the repository")
	}
	if a.PrivateKeyFile == "" {
		p.add(at("privateKeyFile"), field+".privateKeyFile", "must name the App's private key file (PEM)")
	}
	if r.PullRequest != nil && r.PullRequest.Provider != "github" {
		p.add(at(), field, "is GitHub's; this repository's pull requests go to %s", r.PullRequest.Provider)
	}
	if r.Scheme() == "ssh" && r.PullRequest == nil {
		p.add(at(), field, "authenticates git over HTTPS and GitHub's API; this URL uses SSH and opens no pull request: remove it")
	}
	api := a.APIURL(r)
	if u, err := url.Parse(api); api == "" || err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		p.add(at("baseURL"), field+".baseURL", "%q is not an http(s) URL: set it to the REST API root (https://HOST/api/v3/ on GitHub Enterprise Server)", api)
	} else if u.Scheme == "http" && !r.Auth.InsecureHTTP && !loopback(api) {
		p.add(at("baseURL"), field+".baseURL", "would send the App's tokens in clear over http://; use https://")
	} else if u.User != nil || strings.Contains(u.RawQuery, "token") {
		p.add(at("baseURL"), field+".baseURL", "must not hold credentials")
	}
}
