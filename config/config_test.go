package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLoadGood(t *testing.T) {
	c, err := Load("testdata/good.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := []Repository{
		{
			URL: "https://github.com/example/apps.git", Branch: "main", PushBranch: "main", Paths: []string{"."},
			Timeout: Duration(DefaultRepositoryTimeout), Auth: Auth{Username: "git", TokenFile: "/etc/imagebutler/token"},
		},
		{
			URL: "git@github.com:example/infra.git", Branch: "main", PushBranch: "butler",
			Paths: []string{"clusters/prod", "apps"}, Namespace: "platform", Timeout: Duration(DefaultRepositoryTimeout),
			Auth: Auth{Username: "git", SSHKeyFile: "/etc/imagebutler/id_ed25519", KnownHostsFile: "/etc/imagebutler/known_hosts"},
		},
	}
	if diff := cmp.Diff(want, c.Repositories); diff != "" {
		t.Errorf("repositories (-want +got):\n%s", diff)
	}
	if c.Schedule != "*/5 * * * *" || c.StateDir != "/tmp/imagebutler" || *c.Listen != DefaultListen {
		t.Errorf("schedule, stateDir, listen = %q, %q, %q", c.Schedule, c.StateDir, *c.Listen)
	}
	if got := c.AWS.Accounts["408787358807"].RoleARN; got != "arn:aws:iam::408787358807:role/imagebutler-ecr-read" {
		t.Errorf("role ARN = %q", got)
	}
	// The queue's region comes from its URL; the window and rate default.
	wantEvents := Events{
		SQS:      &SQS{QueueURL: "https://sqs.eu-west-1.amazonaws.com/283234040926/imagebutler-ecr-events", Region: "eu-west-1"},
		Webhook:  &Webhook{SecretFile: "/etc/imagebutler/webhook/secret"},
		Coalesce: Duration(DefaultCoalesce), PassesPerMinute: DefaultPassesPerMinute,
	}
	if diff := cmp.Diff(wantEvents, c.Events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestQueueRegion(t *testing.T) {
	for url, want := range map[string]string{
		"https://sqs.us-east-2.amazonaws.com/283234040926/q":            "us-east-2",
		"https://sqs.cn-north-1.amazonaws.com.cn/283234040926/q":        "cn-north-1",
		"https://eu-west-1.queue.amazonaws.com/283234040926/q":          "eu-west-1",
		"http://localhost:4566/000000000000/q":                          "",
		"http://sqs.us-east-1.localhost.localstack.cloud:4566/000000/q": "us-east-1",
	} {
		if got := queueRegion(url); got != want {
			t.Errorf("queueRegion(%q) = %q, want %q", url, got, want)
		}
	}
}

// Every address net.Listen takes for TCP passes, as the chart's schema
// pattern says.
func TestListenAddresses(t *testing.T) {
	re := regexp.MustCompile(ListenPattern)
	for addr, ok := range map[string]bool{":8080": true, "127.0.0.1:0": true, "[::1]:8080": true, "0.0.0.0:http": true, "": true,
		"8080": false, "localhost:": false, "::1:8080": false, "[::1]8080": false} {
		if addr != "" && hostPort(addr) != ok {
			t.Errorf("hostPort(%q) = %v, want %v", addr, !ok, ok)
		}
		if re.MatchString(addr) != ok {
			t.Errorf("ListenPattern matches %q: %v, want %v", addr, !ok, ok)
		}
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse("min.yaml", []byte("listen: \"\"\ngit: {author: {name: b, email: b@x}}\nrepositories: [{url: /srv/git/apps, branch: main}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Schedule != DefaultSchedule || c.StateDir != DefaultStateDir || *c.Listen != "" || c.CommitTemplate != nil {
		t.Errorf("defaults: schedule %q stateDir %q listen %q template %v", c.Schedule, c.StateDir, *c.Listen, c.CommitTemplate)
	}
}

func TestLoadBadConfigs(t *testing.T) {
	tests := []struct {
		file string
		want string
	}{
		{"unknown-field.yaml", `testdata/unknown-field.yaml:6: repositories[0].brnach: unknown field; did you mean branch?
testdata/unknown-field.yaml:7: repositories[0].PushBranch: unknown field; did you mean pushBranch?
testdata/unknown-field.yaml:8: repositories[0].colour: unknown field`},
		{"missing-branch.yaml", "testdata/missing-branch.yaml:6: repositories[1].branch: must not be empty"},
		{"many-problems.yaml", `testdata/many-problems.yaml:1: schedule: "every minute" is not a cron spec or descriptor: expected exactly 5 fields, found 2: [every minute]
testdata/many-problems.yaml:3: git.author.name: must not be empty
testdata/many-problems.yaml:5: repositories[0].url: must not be empty
testdata/many-problems.yaml:7: repositories[0].paths[0]: "../outside" must be a relative path inside the repository`},
		{"no-repositories.yaml", "testdata/no-repositories.yaml: repositories: must list at least one repository"},
		{"ssh-without-known-hosts.yaml", "testdata/ssh-without-known-hosts.yaml:6: repositories[0].auth.knownHostsFile: must be set for an SSH URL (or set insecureSkipHostKeyCheck: true)"},
		{"token-on-ssh.yaml", "testdata/token-on-ssh.yaml:7: repositories[0].auth.tokenFile: is for HTTPS URLs; this URL uses SSH"},
		{"bad-account.yaml", `testdata/bad-account.yaml:3: aws.accounts["4087873588"]: account id must be 12 digits
testdata/bad-account.yaml:3: aws.accounts["4087873588"].roleARN: must be an IAM role ARN (arn:...), got "imagebutler-ecr-read"`},
		{"bad-template.yaml", `testdata/bad-template.yaml:3: git.commitMessage: template: commitMessage:1: unclosed action`},
		{"wrong-type.yaml", `testdata/wrong-type.yaml:6: repositories[0].paths: must be a list of strings, got the string "apps"`},
		{"duplicate-push.yaml", "testdata/duplicate-push.yaml:6: repositories[1]: pushes to the same URL and branch as repositories[0]"},
		{"not-yaml.yaml", "testdata/not-yaml.yaml:1: did not find expected ',' or ']'"},
		{"bad-endpoint.yaml", `testdata/bad-endpoint.yaml:2: aws.endpoint: "localhost:5000" is not an http:// or https:// URL`},
		{"empty.yaml", "testdata/empty.yaml: file is empty"},
		{"no-scheme.yaml", `testdata/no-scheme.yaml:4: repositories[0].url: "github.com/example/apps.git" has no scheme; write https://github.com/example/apps.git (or ssh://git@github.com/example/apps.git for SSH)
testdata/no-scheme.yaml:6: repositories[1].url: "git://github.com/example/infra.git" uses git://, a read-only protocol; use https:// or ssh://
testdata/no-scheme.yaml:8: repositories[2].url: "gitlab.example.com/team/apps" has no scheme; write https://gitlab.example.com/team/apps (or ssh://git@gitlab.example.com/team/apps for SSH)`},
		{"url-credentials.yaml", `testdata/url-credentials.yaml:4: repositories[0].url: the credentials in the URL would be sent in clear over http://; use https:// (or set insecureHTTP: true)
testdata/url-credentials.yaml:6: repositories[1].url: "https://xxxxx@git example.com/org/apps.git" is not a valid URL`},
		{"bad-refs-and-numbers.yaml", `testdata/bad-refs-and-numbers.yaml:1: listenMetrics: "9090" is not a host:port address such as :9090
testdata/bad-refs-and-numbers.yaml:3: aws.requestsPerSecond: must be between 0.01 and 10000, got NaN
testdata/bad-refs-and-numbers.yaml:5: discovery.maxFileMiB: must be between 0.001 and 1024, got -1
testdata/bad-refs-and-numbers.yaml:6: discovery.maxNodes: must be between 1000 and 100000000, got 10
testdata/bad-refs-and-numbers.yaml:12: repositories[0].pushBranch: "HEAD" is not a branch name (write the branch alone, such as main)
testdata/bad-refs-and-numbers.yaml:14: repositories[1].branch: "feature..x" is not a valid branch name (see git check-ref-format)
testdata/bad-refs-and-numbers.yaml:16: repositories[2].branch: "bad branch" is not a valid branch name (see git check-ref-format)
testdata/bad-refs-and-numbers.yaml:17: repositories[2].pushBranch: "refs/heads/butler" is not a branch name (write the branch alone, such as main)`},
		{"bad-listen.yaml", `testdata/bad-listen.yaml:1: listen: "8080" is not a host:port address such as :8080 ("" turns HTTP off)
testdata/bad-listen.yaml:2: listenMetrics: "metrics.local:" is not a host:port address such as :9090`},
		{"bad-signing.yaml", `testdata/bad-signing.yaml:3: git.signingKeyFile: is set with git.signing: keep one (git.signing: {format: openpgp, keyFile: /keys/old.asc})
testdata/bad-signing.yaml:4: git.signing.keyFile: must name the private key file
testdata/bad-signing.yaml:5: git.signing.format: "x509" is not one of openpgp, ssh`},
		{"bad-github-app.yaml", `testdata/bad-github-app.yaml:8: repositories[0].auth.githubApp: and auth.tokenFile exclude each other: the App's installation tokens are the token
testdata/bad-github-app.yaml:8: repositories[0].auth.githubApp.appID: must be the App's id (a positive number, its settings page's "App ID")
testdata/bad-github-app.yaml:8: repositories[0].auth.githubApp.installationID: must be positive, or left out to look it up from the repository
testdata/bad-github-app.yaml:8: repositories[0].auth.githubApp.privateKeyFile: must name the App's private key file (PEM)
testdata/bad-github-app.yaml:12: repositories[1].auth.githubApp: is GitHub's; this repository's pull requests go to gitea
testdata/bad-github-app.yaml:19: repositories[2].auth.githubApp: authenticates git over HTTPS and GitHub's API; this URL uses SSH and opens no pull request: remove it
testdata/bad-github-app.yaml:23: repositories[3].auth.githubApp.baseURL: would send the App's tokens in clear over http://; use https://`},
		{"bad-commit-method.yaml", `testdata/bad-commit-method.yaml:7: repositories[0].commitMethod: must be one of git, api, got "rest"
testdata/bad-commit-method.yaml:10: repositories[1].commitMethod: api is GitHub's Git Data API; this repository's pull requests go to gitea
testdata/bad-commit-method.yaml:10: repositories[1].commitMethod: api and git.signing exclude each other: GitHub signs the commits an App makes through its API
testdata/bad-commit-method.yaml:15: repositories[2].commitMethod: api needs GitHub's token: auth.githubApp (whose commits GitHub shows as verified) or auth.tokenFile
testdata/bad-commit-method.yaml:15: repositories[2].commitMethod: api needs an https:// URL on GitHub (the butler still fetches with git)
testdata/bad-commit-method.yaml:15: repositories[2].commitMethod: api and git.signing exclude each other: GitHub signs the commits an App makes through its API`},
		{"tiny-rate.yaml", "testdata/tiny-rate.yaml:3: aws.requestsPerSecond: must be between 0.01 and 10000, got 1e-300"},
		{"bad-notify.yaml", `testdata/bad-notify.yaml:8: notify[0].type: must be one of webhook, slack, teams, got "discord"
testdata/bad-notify.yaml:10: notify[1].urlFile: must be set: the file holding the receiver's URL
testdata/bad-notify.yaml:12: notify[1].secretFile: is for type webhook (Slack's and Teams' URLs carry their key)
testdata/bad-notify.yaml:13: notify[1].events[1]: must be one of pushed, pull-request, held, failing, recovered, got "deployed"
testdata/bad-notify.yaml:14: notify[1].repositories[0]: "[unclosed" is not a pattern: syntax error in pattern
testdata/bad-notify.yaml:15: notify[2].name: "team" is also the name of notify[1]
testdata/bad-notify.yaml:18: notify[2].failingAfter: must be between 1 and 1000, got -2`},
		{"bad-gates.yaml", `testdata/bad-gates.yaml:5: gates.minAge: must be between 0s and 2160h (90 days), got -5m0s
testdata/bad-gates.yaml:6: gates.scan.maxSeverity: must be one of INFORMATIONAL, LOW, MEDIUM, HIGH, CRITICAL, got "SEVERE"
testdata/bad-gates.yaml:7: gates.signature.trustedRootFile: must be set for keyless signers: the Fulcio and Rekor keys come from it
testdata/bad-gates.yaml:9: gates.signature.keyless[0]: needs identity or identityRegexp (one of them), such as https://github.com/org/repo/.github/workflows/build.yaml@refs/heads/main
testdata/bad-gates.yaml:10: gates.signature.keyless[1]: needs identity or identityRegexp (one of them), such as https://github.com/org/repo/.github/workflows/build.yaml@refs/heads/main
testdata/bad-gates.yaml:10: gates.signature.keyless[1].issuerRegexp: "(" is not a regexp: error parsing regexp: missing closing ): ` + "`(`" + `
testdata/bad-gates.yaml:11: gates.signature.registry: "localhost:5000" is not an http:// or https:// URL
testdata/bad-gates.yaml:18: repositories[0].gates.signature.keys[1]: "awskms://kms.us-east-2.amazonaws.com/1234abcd" is not a KMS key: use awskms:///arn:aws:kms:<region>:<account>:key/<id> (or alias/<name>); the endpoint comes from aws.endpoint
testdata/bad-gates.yaml:19: repositories[0].gates.signature.trustedRootFile: must be set with requireTransparencyLog: the Rekor keys that check a log entry come from it
testdata/bad-gates.yaml:23: repositories[1].gates.signature: needs keys or keyless: whose signatures count`},
		{"workdir-collision.yaml", "testdata/workdir-collision.yaml:8: repositories[1]: its working copy apps-8f593b9399e6 would be the one of repositories[0]; change its URL or pushBranch"},
		{"many-types.yaml", `testdata/many-types.yaml:1: schedule: must be a string, got a list
testdata/many-types.yaml:2: concurrency: must be a whole number, got the string "four"
testdata/many-types.yaml:3: repositoryTimeout: must be a duration such as 30s or 5m, got the string "5 minutes"
testdata/many-types.yaml:6: aws.maxAttempts: must be a whole number, got the number "2.5"
testdata/many-types.yaml:10: repositories[0].branch: must not be empty
testdata/many-types.yaml:11: repositories[0].paths: must be a list of strings, got the string "apps"
testdata/many-types.yaml:12: repositories[0].auth.insecureHTTP: must be true or false, got the string "yes please"
testdata/many-types.yaml:15: repositories[1].timeout: must be a duration such as 30s or 5m, got the string "1d"
testdata/many-types.yaml:16: repositories[2]: must be a mapping, got the string "just a string"`},
		{"bad-events.yaml", `testdata/bad-events.yaml:3: events.sqs.queueURL: "imagebutler-ecr-events" is not a queue URL such as https://sqs.us-east-2.amazonaws.com/123456789012/imagebutler
testdata/bad-events.yaml:4: events.webhook.secretFile: must be set: unsigned deliveries are refused
testdata/bad-events.yaml:4: events.webhook: needs listen (the webhook is served at POST /hooks/git there)
testdata/bad-events.yaml:5: events.coalesce: must be between 0s and 1m, got 2h0m0s
testdata/bad-events.yaml:6: events.passesPerMinute: must be a whole number, got the number "0.5"`},
		{"bad-cluster.yaml", `testdata/bad-cluster.yaml:3: cluster.shards: must be between 1 and 1024, got 2000
testdata/bad-cluster.yaml:4: cluster.leasePrefix: "Image_Butler" is not a name prefix: lowercase letters, digits and dashes, at most 40, starting and ending with a letter or digit
testdata/bad-cluster.yaml:5: cluster.leaseDuration: must be whole seconds, at least 1s (a Lease stores seconds), got 1.5s
testdata/bad-cluster.yaml:6: cluster.kubeconfig: stat /nonexistent/kubeconfig: no such file or directory
testdata/bad-cluster.yaml:7: cluster.address: "10.0.0.1:8080" is not an http:// or https:// URL`},
		{"bad-cluster-deadline.yaml", `testdata/bad-cluster-deadline.yaml:4: cluster.renewDeadline: must be shorter than leaseDuration (15s), got 20s: the difference is the time by which a replica that cannot renew stops pushing before another may take its shards`},
		{"bad-cluster-events.yaml", `testdata/bad-cluster-events.yaml:4: cluster.secretFile: must be set with events: a replica forwards the passes of the repositories it does not hold, signed with this key, to the replica that holds them`},
		{"bad-pull-request.yaml", `testdata/bad-pull-request.yaml:7: repositories[0].pullRequest.provider: must be one of github, gitea, gitlab, got "bitbucket"
testdata/bad-pull-request.yaml:7: repositories[0].pullRequest.branch: must differ from branch "main" (the pull request goes into it)
testdata/bad-pull-request.yaml:7: repositories[0].pullRequest: needs auth.tokenFile: the forge's API token (also used for git over HTTPS), or auth.githubApp on GitHub
testdata/bad-pull-request.yaml:7: repositories[0].pullRequest.title: template: title:1: unclosed action
testdata/bad-pull-request.yaml:10: repositories[1].pullRequest: and pushBranch exclude each other: the butler's branch is pullRequest.branch
testdata/bad-pull-request.yaml:12: repositories[1].pullRequest.apiURL: would send the token in clear over http://; use https:// (or set auth.insecureHTTP: true)
testdata/bad-pull-request.yaml:12: repositories[1].pullRequest.labels[0]: must not be empty
testdata/bad-pull-request.yaml:15: repositories[2].auth: must be empty for a local repository
testdata/bad-pull-request.yaml:16: repositories[2].pullRequest.apiURL: must be set: the repository URL names no forge host to take it from
testdata/bad-pull-request.yaml:16: repositories[2].pullRequest.branch: "bad branch" is not a valid branch name (see git check-ref-format)
testdata/bad-pull-request.yaml:20: repositories[3].pullRequest.apiURL: must not hold credentials (they would be sent, logged and shown); the token comes from auth.tokenFile
testdata/bad-pull-request.yaml:26: repositories[4].pullRequest.autoMerge.method: must be one of merge, squash, rebase, got "fast-forward"
testdata/bad-pull-request.yaml:32: repositories[5].pullRequest.autoMerge.method: GitLab merges or squashes a merge request (fast-forward is the project's merge method setting): use merge or squash`},
		{"token-over-http.yaml", "testdata/token-over-http.yaml:7: repositories[0].auth.tokenFile: would be sent in clear over http://; use https:// (or set insecureHTTP: true)"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := Load(filepath.Join("testdata", tt.file))
			if err == nil {
				t.Fatalf("Load(%q) = nil error, want %q", tt.file, tt.want)
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("Load(%q) error (-want +got):\n%s", tt.file, diff)
			}
		})
	}
}

func TestScheme(t *testing.T) {
	tests := map[string]string{
		"https://github.com/example/apps.git": "https",
		"http://127.0.0.1:8080/apps.git":      "http",
		"ssh://git@github.com/example/apps":   "ssh",
		"git@github.com:example/apps.git":     "ssh",
		"github.com:example/apps.git":         "ssh",
		"file:///srv/git/apps":                "file",
		"/srv/git/apps":                       "file",
		"./apps":                              "file",
		"ftp://example.com/apps":              "",
		"git://example.com/apps":              "",
		"github.com/example/apps.git":         "",
		"repos/apps":                          "file",
		"apps.git":                            "file",
		"":                                    "",
	}
	for url, want := range tests {
		if got := (Repository{URL: url}).Scheme(); got != want {
			t.Errorf("Scheme(%q) = %q, want %q", url, got, want)
		}
	}
}

func TestRedactAndSplitCredentials(t *testing.T) {
	tests := []struct {
		url, redacted, clean, user, password string
	}{
		{"https://butler:s3cr3t@github.com/example/apps.git", "https://xxxxx@github.com/example/apps.git", "https://github.com/example/apps.git", "butler", "s3cr3t"},
		{"https://ghp_T0KEN@github.com/org/apps.git", "https://xxxxx@github.com/org/apps.git", "https://github.com/org/apps.git", "ghp_T0KEN", ""},
		{"https://usr1:p%zz@github.com/x", "https://xxxxx@github.com/x", "https://github.com/x", "usr1", "p%zz"},
		{"https://usr1:p%40ss@github.com/x", "https://xxxxx@github.com/x", "https://github.com/x", "usr1", "p@ss"},
		{"https://usr1:p@ss@github.com/x", "https://xxxxx@github.com/x", "https://github.com/x", "usr1", "p@ss"},
		{"https://usr1:p/w#d@github.com/x", "https://xxxxx@github.com/x", "https://github.com/x", "usr1", "p/w#d"},
		{"http://127.0.0.1:8080/apps.git", "http://127.0.0.1:8080/apps.git", "http://127.0.0.1:8080/apps.git", "", ""},
		{"https://github.com/example/apps.git", "https://github.com/example/apps.git", "https://github.com/example/apps.git", "", ""},
		{"https://github.com/org/repo@v1", "https://github.com/org/repo@v1", "https://github.com/org/repo@v1", "", ""},
		{"ssh://git@github.com/example/apps.git", "ssh://git@github.com/example/apps.git", "ssh://git@github.com/example/apps.git", "", ""},
		{"ssh://git:pw@github.com/example/apps.git", "ssh://git:xxxxx@github.com/example/apps.git", "ssh://git:pw@github.com/example/apps.git", "", ""},
		{"git@github.com:example/apps.git", "git@github.com:example/apps.git", "git@github.com:example/apps.git", "", ""},
		{"/srv/git/apps", "/srv/git/apps", "/srv/git/apps", "", ""},
	}
	for _, tt := range tests {
		if got := Redact(tt.url); got != tt.redacted {
			t.Errorf("Redact(%q) = %q, want %q", tt.url, got, tt.redacted)
		}
		clean, user, password := SplitCredentials(tt.url)
		if clean != tt.clean || user != tt.user || password != tt.password {
			t.Errorf("SplitCredentials(%q) = %q, %q, %q; want %q, %q, %q", tt.url, clean, user, password, tt.clean, tt.user, tt.password)
		}
		if name := (Repository{URL: tt.url, Branch: "main"}).Name(); tt.user != "" && strings.Contains(name, tt.user) || tt.password != "" && strings.Contains(name, tt.password) {
			t.Errorf("Name of %q = %q holds a credential", tt.url, name)
		}
	}
}

func TestRegionChain(t *testing.T) {
	tests := []struct {
		name                  string
		file, env, envDefault string
		want                  string
	}{
		{"file wins", "eu-west-1", "us-east-2", "us-west-2", "eu-west-1"},
		{"AWS_REGION", "", "us-east-2", "us-west-2", "us-east-2"},
		{"AWS_DEFAULT_REGION", "", "", "us-west-2", "us-west-2"},
		{"none", "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("AWS_REGION", tt.env)
			t.Setenv("AWS_DEFAULT_REGION", tt.envDefault)
			text := "git: {author: {name: b, email: b@x}}\nrepositories: [{url: /srv/git/apps, branch: main}]\n"
			if tt.file != "" {
				text += "aws: {region: " + tt.file + "}\n"
			}
			c, err := Parse("r.yaml", []byte(text))
			if err != nil {
				t.Fatal(err)
			}
			if c.AWS.Region != tt.want {
				t.Errorf("region = %q, want %q", c.AWS.Region, tt.want)
			}
		})
	}
}

func TestPullRequestDefaults(t *testing.T) {
	tests := []struct {
		url, provider, owner, repo, api string
	}{
		{"https://github.com/org/apps.git", "github", "org", "apps", "https://api.github.com/"},
		{"https://x-access-token:secret@github.com/org/apps", "github", "org", "apps", "https://api.github.com/"},
		{"git@github.com:org/apps.git", "github", "org", "apps", "https://api.github.com/"},
		{"https://ghe.example.com/team/apps.git", "github", "team", "apps", "https://ghe.example.com/api/v3/"},
		{"http://127.0.0.1:3000/butler/apps.git", "gitea", "butler", "apps", "http://127.0.0.1:3000/"},
		{"ssh://git@gitea.example.com:2222/team/sub/apps.git", "gitea", "sub", "apps", "https://gitea.example.com/"},
		{"https://gitlab.com/group/sub/apps.git", "gitlab", "sub", "apps", "https://gitlab.com/"},
	}
	for _, tt := range tests {
		r := Repository{URL: tt.url, Branch: "main", PullRequest: &PullRequest{Provider: tt.provider}}
		r.PullRequest.applyDefaults(&r)
		owner, repo, err := r.OwnerAndRepo()
		if err != nil || owner != tt.owner || repo != tt.repo || r.PullRequest.APIURL != tt.api || r.PullRequest.Branch != "imagebutler/main" {
			t.Errorf("%s: owner %q repo %q (%v), apiURL %q, branch %q; want %q %q %q", tt.url, owner, repo, err, r.PullRequest.APIURL, r.PullRequest.Branch, tt.owner, tt.repo, tt.api)
		}
	}
}

// A receiver without a name, events or threshold gets the defaults, and
// takes only the events and repositories it asks for.
func TestReceiverDefaultsAndFilters(t *testing.T) {
	cfg, err := Parse("notify.yaml", []byte(`listen: ""
git:
  author: {name: butler, email: butler@example.com}
repositories:
  - {url: "https://github.com/example/apps.git", branch: main}
notify:
  - {type: slack, urlFile: /etc/url}
  - {type: teams, urlFile: /etc/url, events: [held], repositories: ["https://github.com/example/*@main"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Notify[0]
	if r.Name != "slack-0" || len(r.Events) != len(NotifyEvents) || r.FailingAfter != DefaultFailingAfter {
		t.Errorf("defaults: %+v", r)
	}
	teams := cfg.Notify[1]
	for _, tc := range []struct {
		kind, repo string
		want       bool
	}{
		{"held", "https://github.com/example/apps.git@main", true},
		{"pushed", "https://github.com/example/apps.git@main", false},
		{"held", "https://github.com/other/apps.git@main", false},
		{"held", "https://github.com/example/apps.git@release", false},
	} {
		if got := teams.Wants(tc.kind, tc.repo); got != tc.want {
			t.Errorf("Wants(%q, %q) = %v, want %v", tc.kind, tc.repo, got, tc.want)
		}
	}
}

// The documentation's receivers load as they are written.
func TestReadmeNotifyBlock(t *testing.T) {
	readme, err := os.ReadFile("../docs/service.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "\n## Notifications and the status page\n")
	_, block, ok2 := strings.Cut(after, "```yaml\n")
	block, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("no yaml block under the README's notifications heading")
	}
	cfg, err := Parse("README.md", []byte("listen: \"\"\ngit:\n  author: {name: b, email: b@example.com}\nrepositories:\n  - {url: \"https://github.com/example/apps.git\", branch: main}\n"+block))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Notify) != 3 || cfg.Notify[2].FailingAfter != 5 || cfg.Notify[1].Type != "teams" {
		t.Errorf("notify = %+v", cfg.Notify)
	}
}

// The documentation's gates load as they are written.
func TestReadmeGatesBlock(t *testing.T) {
	readme, err := os.ReadFile("../docs/gates.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "\n## Gates\n")
	_, block, ok2 := strings.Cut(after, "```yaml\n")
	block, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("no yaml block under the README's gates heading")
	}
	cfg, err := Parse("README.md", []byte("listen: \"\"\ngit:\n  author: {name: b, email: b@example.com}\n"+block))
	if err != nil {
		t.Fatal(err)
	}
	sig := cfg.Gates.Signature
	if time.Duration(cfg.Gates.MinAge) != time.Hour || cfg.Gates.Scan.MaxSeverity != "HIGH" || sig == nil || len(sig.Keys) != 2 || len(sig.Keyless) != 1 {
		t.Errorf("gates = %+v", cfg.Gates)
	}
	if _, ok := KMSKeyARN(sig.Keys[1]); !ok {
		t.Errorf("the README's KMS key %q is not one", sig.Keys[1])
	}
	if g := cfg.GatesOf(cfg.Repositories[0]); time.Duration(g.MinAge) != 2*time.Hour || g.Signature != nil {
		t.Errorf("the repository's gates = %+v, want its own minAge 2h alone", g)
	}
}
