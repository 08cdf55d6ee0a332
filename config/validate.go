package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"
)

// DefaultAWS is the AWS settings of a configuration that sets only region
// and endpoint: every other one at its default (check --ecr without a
// configuration file).
func DefaultAWS(region, endpoint string) AWS {
	c := Config{AWS: AWS{Region: region, Endpoint: endpoint}}
	c.applyDefaults()
	return c.AWS
}

func (c *Config) applyDefaults() {
	if c.Schedule == "" {
		c.Schedule = DefaultSchedule
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Cluster != nil {
		c.Cluster.applyDefaults()
	}
	if c.MaxProblems == 0 {
		c.MaxProblems = DefaultProblemsReported
	}
	if c.RepositoryTimeout == 0 {
		c.RepositoryTimeout = Duration(DefaultRepositoryTimeout)
	}
	a := &c.AWS
	if a.Region == "" {
		a.Region = EnvRegion()
	}
	if a.MaxConcurrentRequests == 0 {
		a.MaxConcurrentRequests = DefaultMaxConcurrentRequests
	}
	if a.RequestsPerSecond == 0 {
		a.RequestsPerSecond = DefaultRequestsPerSecond
	}
	if a.RequestTimeout == 0 {
		a.RequestTimeout = Duration(DefaultRequestTimeout)
	}
	if a.MaxAttempts == 0 {
		a.MaxAttempts = DefaultMaxAttempts
	}
	if a.MaxBackoff == 0 {
		a.MaxBackoff = Duration(DefaultMaxBackoff)
	}
	if a.MaxPages == 0 {
		a.MaxPages = DefaultMaxPages
	}
	if a.MaxResponseMiB == 0 {
		a.MaxResponseMiB = DefaultMaxResponseMiB
	}
	if c.Discovery.MaxFileMiB == 0 {
		c.Discovery.MaxFileMiB = DefaultMaxFileMiB
	}
	if c.Discovery.MaxNodes == 0 {
		c.Discovery.MaxNodes = DefaultMaxNodes
	}
	c.defaultNotify()
	if c.Events.Coalesce == 0 {
		c.Events.Coalesce = Duration(DefaultCoalesce)
	}
	if c.Events.PassesPerMinute == 0 {
		c.Events.PassesPerMinute = DefaultPassesPerMinute
	}
	if q := c.Events.SQS; q != nil && q.Region == "" {
		if q.Region = queueRegion(q.QueueURL); q.Region == "" {
			q.Region = a.Region
		}
	}
	if c.Listen == nil {
		l := DefaultListen
		c.Listen = &l
	}
	for i := range c.Repositories {
		r := &c.Repositories[i]
		if r.PushBranch == "" {
			r.PushBranch = r.Branch
		}
		if len(r.Paths) == 0 {
			r.Paths = []string{"."}
		}
		if r.Timeout == 0 {
			r.Timeout = c.RepositoryTimeout
		}
		if r.Auth.Username == "" {
			r.Auth.Username = DefaultUsername
		}
		if r.PullRequest != nil {
			r.PullRequest.applyDefaults(r)
		}
	}
}

// EnvRegion is the region the environment names: AWS_REGION, else
// AWS_DEFAULT_REGION (which the AWS CLI reads and the Go SDK does not), else "".
func EnvRegion() string {
	if r := os.Getenv("AWS_REGION"); r != "" {
		return r
	}
	return os.Getenv("AWS_DEFAULT_REGION")
}

var accountRE = regexp.MustCompile(`^[0-9]{12}$`)

// hostPort says whether addr is an address net.Listen takes for TCP:
// host:port with a port ("8080" alone, the mistake, is not one).
func hostPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port != ""
}

// ListenPattern is the JSON schema pattern of listen and listenMetrics,
// as hostPort reads them (the chart's schema refuses what check-config
// would).
const ListenPattern = `^$|^(\[[^\]]*\]|[^:\[\]]*):[0-9A-Za-z-]+$`

// ScheduleParser parses the schedule field: five-field specs and descriptors such as "@every 1m".
var ScheduleParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func (c *Config) validate(p *problems, doc *yaml.Node) {
	at := func(keys ...any) int { return lineOf(doc, keys...) }

	if _, err := ScheduleParser.Parse(c.Schedule); err != nil {
		p.add(at("schedule"), "schedule", "%q is not a cron spec or descriptor: %v", c.Schedule, err)
	}
	if *c.Listen != "" && !hostPort(*c.Listen) {
		p.add(at("listen"), "listen", "%q is not a host:port address such as :8080 (\"\" turns HTTP off)", *c.Listen)
	}
	if c.ListenMetrics != "" {
		if !hostPort(c.ListenMetrics) {
			p.add(at("listenMetrics"), "listenMetrics", "%q is not a host:port address such as :9090", c.ListenMetrics)
		} else if c.ListenMetrics == *c.Listen {
			p.add(at("listenMetrics"), "listenMetrics", "must differ from listen (%s)", *c.Listen)
		}
	}
	if c.Concurrency < 1 || c.Concurrency > 64 {
		p.add(at("concurrency"), "concurrency", "must be between 1 and 64, got %d", c.Concurrency)
	}
	if c.MaxProblems < 1 || c.MaxProblems > 100000 {
		p.add(at("maxProblems"), "maxProblems", "must be between 1 and 100000, got %d", c.MaxProblems)
	}
	if c.RepositoryTimeout < Duration(time.Second) {
		p.add(at("repositoryTimeout"), "repositoryTimeout", "must be at least 1s, got %s", time.Duration(c.RepositoryTimeout))
	}
	if n := c.AWS.MaxConcurrentRequests; n < 1 || n > 64 {
		p.add(at("aws", "maxConcurrentRequests"), "aws.maxConcurrentRequests", "must be between 1 and 64, got %d", n)
	}
	// Below one request in 100 s a listing's pages wait out any timeout. NaN
	// fails too.
	if r := c.AWS.RequestsPerSecond; !(r >= MinRequestsPerSecond && r <= 10000) {
		p.add(at("aws", "requestsPerSecond"), "aws.requestsPerSecond", "must be between %g and 10000, got %g", MinRequestsPerSecond, r)
	}
	if d := c.AWS.RequestTimeout; d < Duration(time.Second) {
		p.add(at("aws", "requestTimeout"), "aws.requestTimeout", "must be at least 1s, got %s", time.Duration(d))
	}
	if m := c.Discovery.MaxFileMiB; !(m >= 0.001 && m <= 1024) { // NaN fails too
		p.add(at("discovery", "maxFileMiB"), "discovery.maxFileMiB", "must be between 0.001 and 1024, got %g", m)
	}
	if n := c.Discovery.MaxNodes; n < 1000 || n > 100_000_000 {
		p.add(at("discovery", "maxNodes"), "discovery.maxNodes", "must be between 1000 and 100000000, got %d", n)
	}
	if n := c.AWS.MaxPages; n < 1 || n > 10000 {
		p.add(at("aws", "maxPages"), "aws.maxPages", "must be between 1 and 10000, got %d", n)
	}
	if n := c.AWS.MaxResponseMiB; n < 1 || n > 1024 {
		p.add(at("aws", "maxResponseMiB"), "aws.maxResponseMiB", "must be between 1 and 1024, got %d", n)
	}
	if n := c.AWS.MaxAttempts; n < 1 || n > 20 {
		p.add(at("aws", "maxAttempts"), "aws.maxAttempts", "must be between 1 and 20, got %d", n)
	}
	if c.AWS.Endpoint != "" {
		if !httpURL(c.AWS.Endpoint) {
			p.add(at("aws", "endpoint"), "aws.endpoint", "%q is not an http:// or https:// URL", c.AWS.Endpoint)
		}
	}
	for id, a := range c.AWS.Accounts {
		field := fmt.Sprintf("aws.accounts[%q]", id)
		if !accountRE.MatchString(id) {
			p.add(at("aws", "accounts", id), field, "account id must be 12 digits")
		}
		if !strings.HasPrefix(a.RoleARN, "arn:") {
			p.add(at("aws", "accounts", id, "roleARN"), field+".roleARN", "must be an IAM role ARN (arn:...), got %q", a.RoleARN)
		}
	}
	c.validateEvents(p, at)
	if c.Cluster != nil {
		c.Cluster.validate(p, at, c.Events.SQS != nil || c.Events.Webhook != nil, *c.Listen)
	}
	c.validateNotify(p, at)
	c.Gates.validate(p, at, []any{"gates"}, "gates")
	for i, r := range c.Repositories {
		if r.Gates != nil {
			r.Gates.validate(p, at, []any{"repositories", i, "gates"}, fmt.Sprintf("repositories[%d].gates", i))
		}
	}
	if strings.TrimSpace(c.Git.Author.Name) == "" {
		p.add(at("git", "author", "name"), "git.author.name", "must not be empty")
	}
	if strings.TrimSpace(c.Git.Author.Email) == "" {
		p.add(at("git", "author", "email"), "git.author.email", "must not be empty")
	}
	if c.Git.CommitMessage != "" {
		t, err := template.New("commitMessage").Option("missingkey=error").Parse(c.Git.CommitMessage)
		if err != nil {
			p.add(at("git", "commitMessage"), "git.commitMessage", "%v", err)
		}
		c.CommitTemplate = t
	}
	if c.Git.SigningKeyPassphraseFile != "" && c.Git.SigningKeyFile == "" {
		p.add(at("git", "signingKeyPassphraseFile"), "git.signingKeyPassphraseFile", "is set but git.signingKeyFile is not")
	}
	if s := c.Git.Signing; s != nil {
		if c.Git.SigningKeyFile != "" {
			p.add(at("git", "signingKeyFile"), "git.signingKeyFile", "is set with git.signing: keep one (git.signing: {format: openpgp, keyFile: %s})", c.Git.SigningKeyFile)
		}
		if s.Format != "" && !slices.Contains(SigningFormats, s.Format) {
			p.add(at("git", "signing", "format"), "git.signing.format", "%q is not one of %s", s.Format, strings.Join(SigningFormats, ", "))
		}
		if s.KeyFile == "" {
			p.add(at("git", "signing", "keyFile"), "git.signing.keyFile", "must name the private key file")
		}
	}
	if len(c.Repositories) == 0 {
		p.add(at("repositories"), "repositories", "must list at least one repository")
	}
	pushTargets := map[string]int{}
	workDirs := map[string]int{}
	for i, r := range c.Repositories {
		field := fmt.Sprintf("repositories[%d]", i)
		line := func(keys ...any) int { return at(append([]any{"repositories", i}, keys...)...) }
		scheme := r.Scheme()
		switch {
		case r.URL == "":
			p.add(line("url"), field+".url", "must not be empty")
		case scheme == "":
			p.add(line("url"), field+".url", "%s", urlProblem(r.URL))
		}
		if r.Branch == "" {
			p.add(line("branch"), field+".branch", "must not be empty")
		} else if msg := refNameProblem(r.Branch); msg != "" {
			p.add(line("branch"), field+".branch", "%q %s", r.Branch, msg)
		}
		if msg := refNameProblem(r.PushBranch); r.PushBranch != r.Branch && msg != "" {
			p.add(line("pushBranch"), field+".pushBranch", "%q %s", r.PushBranch, msg)
		}
		if r.Timeout < Duration(time.Second) {
			p.add(line("timeout"), field+".timeout", "must be at least 1s, got %s", time.Duration(r.Timeout))
		}
		for j, dir := range r.Paths {
			if dir == "" || path.IsAbs(dir) || dir != "." && (path.Clean(dir) == ".." || strings.HasPrefix(path.Clean(dir), "../")) {
				p.add(line("paths", j), fmt.Sprintf("%s.paths[%d]", field, j), "%q must be a relative path inside the repository", dir)
			}
		}
		if r.URL != "" && scheme != "" {
			key := strings.TrimSuffix(Redact(r.URL), "/") + "#" + r.PushBranch
			if prev, ok := pushTargets[key]; ok {
				p.add(line("url"), field, "pushes to the same URL and branch as repositories[%d]", prev)
			} else {
				pushTargets[key] = i
				if prev, ok := workDirs[r.WorkDirName()]; ok {
					p.add(line("url"), field, "its working copy %s would be the one of repositories[%d]; change its URL or pushBranch", r.WorkDirName(), prev)
				}
				workDirs[r.WorkDirName()] = i
			}
		}
		if r.PullRequest != nil {
			r.PullRequest.validate(p, r, field, line)
		}
		r.validateCommitMethod(p, c, field, line)
		a := r.Auth
		if app := a.GitHubApp; app != nil {
			app.validate(p, r, field+".auth.githubApp", func(keys ...any) int { return line(append([]any{"auth", "githubApp"}, keys...)...) })
		}
		switch scheme {
		case "ssh":
			if a.TokenFile != "" && r.PullRequest == nil {
				p.add(line("auth", "tokenFile"), field+".auth.tokenFile", "is for HTTPS URLs; this URL uses SSH")
			}
			if a.SSHKeyFile == "" {
				p.add(line("auth"), field+".auth.sshKeyFile", "must be set for an SSH URL")
			}
			if a.KnownHostsFile == "" && !a.InsecureSkipHostKeyCheck {
				p.add(line("auth"), field+".auth.knownHostsFile", "must be set for an SSH URL (or set insecureSkipHostKeyCheck: true)")
			}
		case "https", "http":
			clean, user, password := SplitCredentials(r.URL)
			if u, err := url.Parse(clean); err != nil || u.Host == "" {
				p.add(line("url"), field+".url", "%q is not a valid URL", Redact(r.URL))
			}
			if scheme == "http" && a.TokenFile != "" && !a.InsecureHTTP && !loopback(clean) {
				p.add(line("auth", "tokenFile"), field+".auth.tokenFile", "would be sent in clear over http://; use https:// (or set insecureHTTP: true)")
			}
			if scheme == "http" && a.GitHubApp != nil && !a.InsecureHTTP && !loopback(clean) {
				p.add(line("auth", "githubApp"), field+".auth.githubApp", "its tokens would be sent in clear over http://; use https:// (or set insecureHTTP: true)")
			}
			if scheme == "http" && (user != "" || password != "") && !a.InsecureHTTP && !loopback(clean) {
				p.add(line("url"), field+".url", "the credentials in the URL would be sent in clear over http://; use https:// (or set insecureHTTP: true)")
			}
			if a.SSHKeyFile != "" {
				p.add(line("auth", "sshKeyFile"), field+".auth.sshKeyFile", "is for SSH URLs; this URL uses %s", scheme)
			}
			if a.KnownHostsFile != "" {
				p.add(line("auth", "knownHostsFile"), field+".auth.knownHostsFile", "is for SSH URLs; this URL uses %s", scheme)
			}
		case "file":
			if a.TokenFile != "" || a.SSHKeyFile != "" || a.GitHubApp != nil {
				p.add(line("auth"), field+".auth", "must be empty for a local repository")
			}
		}
	}
}

// refNameProblem says why name is no valid branch name (git
// check-ref-format's rules for refs/heads/<name>), or "".
func refNameProblem(name string) string {
	switch {
	case name == "HEAD" || strings.HasPrefix(name, "refs/"):
		return "is not a branch name (write the branch alone, such as main)"
	case strings.HasPrefix(name, "-"):
		return "is not a valid branch name: it starts with '-'"
	}
	if err := plumbing.NewBranchReferenceName(name).Validate(); err != nil {
		return "is not a valid branch name (see git check-ref-format)"
	}
	return ""
}

// lineOf returns the line of the node at keys (strings index mappings, ints
// sequences), or of the deepest node found on the way, or 0.
func lineOf(n *yaml.Node, keys ...any) int {
	line := 0
	for _, k := range keys {
		if n == nil {
			break
		}
		var next *yaml.Node
		switch k := k.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == k {
						line = n.Content[i].Line
						next = n.Content[i+1]
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && k < len(n.Content) {
				next = n.Content[k]
				line = next.Line
			}
		}
		n = next
	}
	return line
}

// loopback reports whether rawURL's host is this machine.
func loopback(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// queueRegion is the region in an SQS queue URL's host
// (sqs.<region>.amazonaws.com, or the legacy <region>.queue.amazonaws.com),
// or "" when the host names none (a local endpoint).
func queueRegion(queueURL string) string {
	u, err := url.Parse(queueURL)
	if err != nil {
		return ""
	}
	labels := strings.Split(u.Hostname(), ".")
	switch {
	case len(labels) >= 4 && labels[0] == "sqs":
		return labels[1]
	case len(labels) >= 4 && labels[1] == "queue":
		return labels[0]
	}
	return ""
}

func (c *Config) validateEvents(p *problems, at func(keys ...any) int) {
	e := c.Events
	if d := time.Duration(e.Coalesce); d < 0 || d > time.Minute {
		p.add(at("events", "coalesce"), "events.coalesce", "must be between 0s and 1m, got %s", d)
	}
	if n := e.PassesPerMinute; n < 1 || n > 60 {
		p.add(at("events", "passesPerMinute"), "events.passesPerMinute", "must be between 1 and 60, got %d", n)
	}
	if q := e.SQS; q != nil {
		if u, err := url.Parse(q.QueueURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") == "" {
			p.add(at("events", "sqs", "queueURL"), "events.sqs.queueURL", "%q is not a queue URL such as https://sqs.us-east-2.amazonaws.com/123456789012/imagebutler", q.QueueURL)
		} else if q.Region == "" {
			p.add(at("events", "sqs", "queueURL"), "events.sqs.region", "unknown: the queue URL names no region and neither aws.region, AWS_REGION nor AWS_DEFAULT_REGION is set")
		}
	}
	if w := e.Webhook; w != nil {
		if w.SecretFile == "" {
			p.add(at("events", "webhook"), "events.webhook.secretFile", "must be set: unsigned deliveries are refused")
		}
		if *c.Listen == "" {
			p.add(at("events", "webhook"), "events.webhook", "needs listen (the webhook is served at POST /hooks/git there)")
		}
	}
}
