package config

import (
	"net/url"
	"strings"
)

// APIURL is the REST API root the App's tokens are minted at: BaseURL, else
// the pull request's API root, else the one the repository URL's host
// implies.
func (a *GitHubApp) APIURL(r Repository) string {
	switch {
	case a.BaseURL != "":
		return a.BaseURL
	case r.PullRequest != nil && r.PullRequest.APIURL != "":
		return r.PullRequest.APIURL
	}
	return defaultAPIURL("github", r.URL)
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
