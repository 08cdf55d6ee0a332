package config

import (
	"fmt"
	"text/template"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults applied by Load to fields the file leaves empty.
const (
	DefaultSchedule = "@every 1m"
	DefaultStateDir = "/var/lib/imagebutler"
	DefaultListen   = ":8080"
	DefaultUsername = "git"

	DefaultConcurrency       = 4
	DefaultRepositoryTimeout = 5 * time.Minute

	DefaultMaxConcurrentRequests = 4
	DefaultRequestsPerSecond     = 20
	MinRequestsPerSecond         = 0.01
	DefaultRequestTimeout        = 30 * time.Second
	DefaultMaxAttempts           = 5
	DefaultMaxBackoff            = 10 * time.Second
	DefaultMaxPages              = 200
	DefaultMaxResponseMiB        = 64
	DefaultProblemsReported      = 100
	DefaultMaxFileMiB            = 10
	DefaultMaxNodes              = 1_000_000
	DefaultCoalesce              = 2 * time.Second
	DefaultPassesPerMinute       = 4
)

// Duration is a time.Duration written as "30s" or "5m".
type Duration time.Duration

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		// A TypeError lets the decoder go on to the other fields.
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a duration such as 30s or 5m", n.Line, n.Value)}}
	}
	*d = Duration(v)
	return nil
}

// Config is a validated configuration file.
type Config struct {
	// Schedule is a robfig/cron spec (five fields) or descriptor such as "@every 1m".
	Schedule string `yaml:"schedule"`
	// StateDir holds one working copy per repository.
	StateDir string `yaml:"stateDir"`
	// Listen is the HTTP address for health, metrics and status; empty turns HTTP off.
	Listen *string `yaml:"listen"`
	// ListenMetrics, when set, is a second address that alone serves
	// /metrics and /status, so that they need not be reachable where the
	// probes are.
	ListenMetrics string `yaml:"listenMetrics"`
	// Concurrency is how many git repositories a cycle works on at once.
	Concurrency int `yaml:"concurrency"`
	// RepositoryTimeout bounds the work on one repository in one cycle.
	RepositoryTimeout Duration `yaml:"repositoryTimeout"`
	// MaxProblems is how many problems per repository the log and /status
	// show each cycle, then a count of the rest (default 100).
	MaxProblems int `yaml:"maxProblems"`
	// Discovery bounds what one file of a watched repository may cost.
	Discovery Discovery `yaml:"discovery"`
	// AWS says how ECR is reached.
	AWS AWS `yaml:"aws"`
	// Git holds settings shared by every repository.
	Git Git `yaml:"git"`
	// Repositories are the git repositories the butler keeps up to date.
	Repositories []Repository `yaml:"repositories"`
	// Events, when set, start targeted passes between polls: ECR pushes
	// from an SQS queue, git pushes from a webhook.
	Events Events `yaml:"events"`
	// Notify lists the receivers told of pushes, pull requests, holds and
	// failures.
	Notify []Receiver `yaml:"notify"`
	// Gates are what an image must pass before its tag is written, for
	// every repository that sets none of its own.
	Gates Gates `yaml:"gates"`
	// Cluster, when set, spreads the repositories over the replicas that
	// run with the same settings, through Kubernetes Leases (run only).
	Cluster *Cluster `yaml:"cluster"`

	// File is the path the configuration was loaded from.
	File string `yaml:"-"`
	// CommitTemplate is Git.CommitMessage parsed, or nil for the default message.
	CommitTemplate *template.Template `yaml:"-"`
}

// AWS configures the ECR clients.
type AWS struct {
	// Region is the default region for annotations that give only an account
	// id. Load fills it from AWS_REGION, else AWS_DEFAULT_REGION, when the file
	// leaves it empty.
	Region string `yaml:"region"`
	// Endpoint overrides the ECR endpoint (LocalStack, moto). AWS_ENDPOINT_URL_ECR also works.
	Endpoint string `yaml:"endpoint"`
	// Accounts maps a 12-digit account id to the role assumed to read its ECR.
	Accounts map[string]Account `yaml:"accounts"`
	// MaxConcurrentRequests bounds the ECR requests in flight at once (default 4).
	MaxConcurrentRequests int `yaml:"maxConcurrentRequests"`
	// RequestsPerSecond is the client-side rate limit per account and region
	// (default 20; between MinRequestsPerSecond and 10000).
	RequestsPerSecond float64 `yaml:"requestsPerSecond"`
	// RequestTimeout bounds one ECR request attempt (default 30s).
	RequestTimeout Duration `yaml:"requestTimeout"`
	// MaxAttempts is how often the SDK tries a request that fails with
	// throttling, a 5xx or a timeout (default 5).
	MaxAttempts int `yaml:"maxAttempts"`
	// MaxBackoff caps the wait between attempts (default 10s).
	MaxBackoff Duration `yaml:"maxBackoff"`
	// MaxPages bounds the pages of one listing (default 200, 200,000 images).
	MaxPages int `yaml:"maxPages"`
	// MaxResponseMiB bounds one ECR response body (default 64).
	MaxResponseMiB int `yaml:"maxResponseMiB"`
}

// Discovery holds the budgets of reading a repository's YAML files; a file
// past one is skipped with a warning that names the setting.
type Discovery struct {
	// MaxFileMiB is the largest file read, in MiB (default 10; fractions allowed).
	MaxFileMiB float64 `yaml:"maxFileMiB"`
	// MaxNodes is the most YAML nodes a file may hold to be parsed (default 1,000,000).
	MaxNodes int `yaml:"maxNodes"`
}

// LongestTimeout is the longest one repository's work in a cycle may take:
// repositoryTimeout or a repository's own timeout, whichever is longer
// (DefaultRepositoryTimeout when neither is set).
func (c *Config) LongestTimeout() time.Duration {
	d := time.Duration(c.RepositoryTimeout)
	for _, r := range c.Repositories {
		d = max(d, time.Duration(r.Timeout))
	}
	if d <= 0 {
		d = DefaultRepositoryTimeout
	}
	return d
}

// Events configures push-triggered passes (run only). The poll stays
// authoritative: an event only starts a pass sooner.
type Events struct {
	// SQS is the queue EventBridge delivers ECR push events to.
	SQS *SQS `yaml:"sqs"`
	// Webhook accepts git push deliveries at POST /hooks/git on listen.
	Webhook *Webhook `yaml:"webhook"`
	// Coalesce is how long events are gathered into one pass (default 2s):
	// a multi-arch push sends several.
	Coalesce Duration `yaml:"coalesce"`
	// PassesPerMinute bounds the event-started passes of one repository
	// (default 4); events past it wait for the next allowed pass.
	PassesPerMinute int `yaml:"passesPerMinute"`
}

// SQS is a queue of EventBridge "ECR Image Action" events.
type SQS struct {
	// QueueURL is the queue's URL, https://sqs.<region>.amazonaws.com/<account>/<name>.
	QueueURL string `yaml:"queueURL"`
	// Region is the queue's region; default: the one in QueueURL, else aws.region.
	Region string `yaml:"region"`
}

// Webhook authenticates git push deliveries.
type Webhook struct {
	// SecretFile holds the shared secret: GitHub's webhook secret (HMAC of
	// X-Hub-Signature-256), GitLab's secret token (X-Gitlab-Token), or a
	// bearer token (Authorization: Bearer). Read at each delivery.
	SecretFile string `yaml:"secretFile"`
}

// Account is how another AWS account's ECR is read.
type Account struct {
	// RoleARN is the IAM role assumed to read that account's ECR.
	RoleARN string `yaml:"roleARN"`
}

// Git holds commit settings shared by every repository.
type Git struct {
	// Author is the author and committer of the butler's commits.
	Author Author `yaml:"author"`
	// CommitMessage is a Go text/template for commit messages; empty selects the default.
	CommitMessage string `yaml:"commitMessage"`
	// Signing, when set, signs the butler's commits.
	Signing *Signing `yaml:"signing"`
	// SigningKeyFile holds an ASCII-armored OpenPGP private key; when set,
	// commits are signed. The same as signing: {format: openpgp, keyFile}.
	SigningKeyFile string `yaml:"signingKeyFile"`
	// SigningKeyPassphraseFile holds the key's passphrase, when it has one.
	SigningKeyPassphraseFile string `yaml:"signingKeyPassphraseFile"`
}

// Signing is how the butler signs its commits, as git does with
// gpg.format: an OpenPGP signature, or an SSH signature (namespace "git").
type Signing struct {
	// Format is "openpgp" (the default) or "ssh".
	Format string `yaml:"format"`
	// KeyFile holds the private key: ASCII-armored OpenPGP, or an OpenSSH
	// private key (ed25519, ECDSA or RSA).
	KeyFile string `yaml:"keyFile"`
	// PassphraseFile holds the key's passphrase, when it has one.
	PassphraseFile string `yaml:"passphraseFile"`
}

// SigningFormats are the signature formats of git.signing.format.
var SigningFormats = []string{"openpgp", "ssh"}

// SigningKey returns how commits are signed: git.signing, or the older
// git.signingKeyFile as an OpenPGP key; nil when they are not.
func (g Git) SigningKey() *Signing {
	if g.Signing != nil {
		s := *g.Signing
		if s.Format == "" {
			s.Format = "openpgp"
		}
		return &s
	}
	if g.SigningKeyFile != "" {
		return &Signing{Format: "openpgp", KeyFile: g.SigningKeyFile, PassphraseFile: g.SigningKeyPassphraseFile}
	}
	return nil
}

// Author is a git identity.
type Author struct {
	Name  string `yaml:"name"`
	Email string `yaml:"email"`
}

// Repository is one git repository to keep up to date.
type Repository struct {
	// URL is https://, http://, ssh://, git@host:path, file:// or a local path.
	URL string `yaml:"url"`
	// Branch is the branch read.
	Branch string `yaml:"branch"`
	// PushBranch is the branch pushed to; it defaults to Branch.
	PushBranch string `yaml:"pushBranch"`
	// Paths are the folders scanned, relative to the repository root; default ["."].
	Paths []string `yaml:"paths"`
	// Namespace is the fallback namespace of annotated objects.
	Namespace string `yaml:"namespace"`
	// Timeout bounds the work on this repository in one cycle; it defaults
	// to the file's repositoryTimeout.
	Timeout Duration `yaml:"timeout"`
	// Auth holds the credentials used to fetch and push.
	Auth Auth `yaml:"auth"`
	// PullRequest, when set, proposes updates in a pull request instead of
	// committing to Branch.
	PullRequest *PullRequest `yaml:"pullRequest"`
	// Gates, when set, replace the top-level gates for this repository.
	Gates *Gates `yaml:"gates"`
	// CommitMethod is how the butler's commits reach the remote: "git" (a
	// push; the default) or "api" (made through GitHub's Git Data API,
	// which signs what a GitHub App makes so).
	CommitMethod string `yaml:"commitMethod"`
}

// Auth holds references to credentials, never the credentials themselves.
type Auth struct {
	// Username is sent with the HTTPS token; default "git".
	Username string `yaml:"username"`
	// TokenFile holds an HTTPS token (password), read at every cycle.
	TokenFile string `yaml:"tokenFile"`
	// SSHKeyFile holds a private key for SSH URLs.
	SSHKeyFile string `yaml:"sshKeyFile"`
	// KnownHostsFile holds the host keys SSH servers are checked against.
	KnownHostsFile string `yaml:"knownHostsFile"`
	// InsecureSkipHostKeyCheck turns off SSH host key verification.
	InsecureSkipHostKeyCheck bool `yaml:"insecureSkipHostKeyCheck"`
	// InsecureHTTP allows sending the token over plain http:// to a host
	// other than loopback.
	InsecureHTTP bool `yaml:"insecureHTTP"`
	// GitHubApp, in place of TokenFile, authenticates as a GitHub App
	// installation: git over HTTPS and the pull request API use its
	// installation tokens, minted and renewed by the butler.
	GitHubApp *GitHubApp `yaml:"githubApp"`
	// Token is a token minted at run time (an installation token of
	// GitHubApp), used as one read from TokenFile would be; never in the
	// file, never logged.
	Token string `yaml:"-"`
}

// GitHubApp is a GitHub App installation the butler acts as.
type GitHubApp struct {
	// AppID is the App's id (its settings page, "App ID").
	AppID int64 `yaml:"appID"`
	// InstallationID is the App's installation on the repository's owner;
	// default: looked up from the repository (GET /repos/{owner}/{repo}/installation).
	InstallationID int64 `yaml:"installationID"`
	// PrivateKeyFile holds the App's private key (PEM, as GitHub gives it).
	PrivateKeyFile string `yaml:"privateKeyFile"`
	// BaseURL is the REST API root: default pullRequest.apiURL, else
	// https://api.github.com/ for github.com and https://HOST/api/v3/ for
	// GitHub Enterprise Server.
	BaseURL string `yaml:"baseURL"`
}
