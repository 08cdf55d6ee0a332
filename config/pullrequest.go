package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"text/template"
)

// PullRequest makes the butler propose its updates in a pull request
// instead of committing to the branch: it commits to its own branch, based
// on the repository's branch, and opens (or updates) one pull request from
// it.
type PullRequest struct {
	// Provider is the forge's API: "github", "gitea" or "gitlab".
	Provider string `yaml:"provider"`
	// APIURL is the forge's API root; default from the repository URL
	// (https://api.github.com/ for github.com, https://HOST/api/v3/ for
	// GitHub Enterprise, https://HOST/ for Gitea and GitLab, whose client
	// adds api/v4/).
	APIURL string `yaml:"apiURL"`
	// Branch is the butler's branch; default imagebutler/<branch>.
	Branch string `yaml:"branch"`
	// Title and Body are Go templates over the data of git.commitMessage;
	// by default the commit message's first line and the rest of it.
	Title string `yaml:"title"`
	Body  string `yaml:"body"`
	// Labels are put on the pull request when it is opened.
	Labels []string `yaml:"labels"`
	// AutoMerge, when set, turns on the forge's own auto-merge each time
	// the butler opens or updates its pull request: the forge merges it
	// once its required checks (and reviews) pass.
	AutoMerge *AutoMerge `yaml:"autoMerge"`

	// TitleTemplate and BodyTemplate are Title and Body parsed (nil when
	// empty).
	TitleTemplate *template.Template `yaml:"-"`
	BodyTemplate  *template.Template `yaml:"-"`
}

// AutoMerge is how the forge merges the butler's pull request by itself.
type AutoMerge struct {
	// Method is "merge" (a merge commit), "squash" or "rebase"; default
	// merge. GitLab takes merge or squash (its fast-forward or merge
	// commit is the project's setting).
	Method string `yaml:"method"`
}

// MergeMethods are the methods of pullRequest.autoMerge.method.
var MergeMethods = []string{"merge", "squash", "rebase"}

// Providers are the forges a pull request (a merge request on GitLab) can
// be opened on.
var Providers = []string{"github", "gitea", "gitlab"}

// ProjectPath is the repository's path on its forge, from its URL without
// ".git" (https://host/group/sub/apps.git → group/sub/apps): GitLab's
// project path.
func (r Repository) ProjectPath() (string, error) {
	_, _, p := location(r.URL)
	p = strings.Trim(strings.TrimSuffix(strings.TrimRight(p, "/"), ".git"), "/")
	parts := strings.Split(p, "/")
	if len(parts) < 2 || slices.Contains(parts, "") {
		return "", fmt.Errorf("%s does not name an owner and a repository", Redact(r.URL))
	}
	return p, nil
}

// OwnerAndRepo are the forge's names of the repository, from its URL's last
// two path elements (https://host/org/apps.git → org, apps).
func (r Repository) OwnerAndRepo() (owner, repo string, err error) {
	p, err := r.ProjectPath()
	if err != nil {
		return "", "", err
	}
	parts := strings.Split(p, "/")
	return parts[len(parts)-2], parts[len(parts)-1], nil
}

// location splits a repository URL, credentials left out, into its scheme,
// host (with its port) and path. An scp-like URL (git@host:org/apps.git) is
// ssh; a local path has no scheme and no host.
func location(rawURL string) (scheme, host, path string) {
	clean, _, _ := SplitCredentials(rawURL)
	if u, err := url.Parse(clean); err == nil && (u.Host != "" || u.Scheme == "file") {
		return u.Scheme, u.Host, u.Path
	}
	if at := strings.Index(clean, "@"); at >= 0 {
		if h, p, ok := strings.Cut(clean[at+1:], ":"); ok && !strings.Contains(h, "/") {
			return "ssh", h, p
		}
	}
	return "", "", clean
}

// defaultAPIURL is the API root of provider for a repository at rawURL.
func defaultAPIURL(provider, rawURL string) string {
	urlScheme, host, _ := location(rawURL)
	scheme := "https"
	switch urlScheme {
	case "http":
		scheme = "http"
	case "ssh":
		host, _, _ = strings.Cut(host, ":") // the SSH port is not the API's
	case "https":
		host = strings.TrimSuffix(host, ":443")
	}
	switch {
	case host == "":
		return ""
	case provider == "github" && host == "github.com":
		return "https://api.github.com/"
	case provider == "github":
		return scheme + "://" + host + "/api/v3/"
	}
	return scheme + "://" + host + "/"
}

func (pr *PullRequest) applyDefaults(r *Repository) {
	if pr.Branch == "" {
		pr.Branch = "imagebutler/" + r.Branch
	}
	if pr.APIURL == "" {
		pr.APIURL = defaultAPIURL(pr.Provider, r.URL)
	}
	if pr.AutoMerge != nil && pr.AutoMerge.Method == "" {
		pr.AutoMerge.Method = "merge"
	}
}

func (pr *PullRequest) validate(p *problems, r Repository, field string, line func(keys ...any) int) {
	field += ".pullRequest"
	at := func(keys ...any) int { return line(append([]any{"pullRequest"}, keys...)...) }
	known := false
	for _, name := range Providers {
		known = known || pr.Provider == name
	}
	if !known {
		p.add(at("provider"), field+".provider", "must be one of %s, got %q", strings.Join(Providers, ", "), pr.Provider)
	}
	if pr.APIURL == "" {
		p.add(at(), field+".apiURL", "must be set: the repository URL names no forge host to take it from")
	} else if u, err := url.Parse(pr.APIURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		p.add(at("apiURL"), field+".apiURL", "%q is not an http(s) URL", pr.APIURL)
	} else if u.User != nil {
		p.add(at("apiURL"), field+".apiURL", "must not hold credentials (they would be sent, logged and shown); the token comes from auth.tokenFile")
	} else if u.Scheme == "http" && !r.Auth.InsecureHTTP && !loopback(pr.APIURL) {
		p.add(at("apiURL"), field+".apiURL", "would send the token in clear over http://; use https:// (or set auth.insecureHTTP: true)")
	}
	if msg := refNameProblem(pr.Branch); msg != "" {
		p.add(at("branch"), field+".branch", "%q %s", pr.Branch, msg)
	} else if pr.Branch == r.Branch {
		p.add(at("branch"), field+".branch", "must differ from branch %q (the pull request goes into it)", r.Branch)
	}
	if r.PushBranch != r.Branch {
		p.add(line("pushBranch"), field, "and pushBranch exclude each other: the butler's branch is pullRequest.branch")
	}
	if r.Auth.TokenFile == "" && r.Auth.GitHubApp == nil {
		p.add(at(), field, "needs auth.tokenFile: the forge's API token (also used for git over HTTPS), or auth.githubApp on GitHub")
	}
	if _, _, err := r.OwnerAndRepo(); err != nil {
		p.add(line("url"), field, "%v", err)
	}
	for _, f := range []struct{ name, text string }{{"title", pr.Title}, {"body", pr.Body}} {
		name, text := f.name, f.text
		if text == "" {
			continue
		}
		t, err := template.New(name).Option("missingkey=error").Parse(text)
		if err != nil {
			p.add(at(name), field+"."+name, "%v", err)
			continue
		}
		if name == "title" {
			pr.TitleTemplate = t
		} else {
			pr.BodyTemplate = t
		}
	}
	if am := pr.AutoMerge; am != nil {
		switch {
		case !slices.Contains(MergeMethods, am.Method):
			p.add(at("autoMerge", "method"), field+".autoMerge.method", "must be one of %s, got %q", strings.Join(MergeMethods, ", "), am.Method)
		case am.Method == "rebase" && pr.Provider == "gitlab":
			p.add(at("autoMerge", "method"), field+".autoMerge.method", "GitLab merges or squashes a merge request (fast-forward is the project's merge method setting): use merge or squash")
		}
	}
	for i, l := range pr.Labels {
		if strings.TrimSpace(l) == "" {
			p.add(at("labels", i), fmt.Sprintf("%s.labels[%d]", field, i), "must not be empty")
		}
	}
}
