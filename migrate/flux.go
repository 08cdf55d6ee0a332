// Package migrate turns a Flux image automation setup, exported as files
// (no cluster access), into imagebutler's configuration, and says what
// does not carry over: GitRepository and ImageUpdateAutomation objects
// become repositories, and each ImagePolicy (with its ImageRepository)
// becomes the policy imagebutler would read, so that its pick can be
// compared with the ImagePolicy's status.latestRef.
package migrate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/policy"
)

// Plan is what Flux's objects become.
type Plan struct {
	// Config is the imagebutler.yaml written, as YAML.
	Config string `json:"config"`
	// Warnings are the fields that do not carry over, each with what to do.
	Warnings []string `json:"warnings"`
	// Policies are the ImagePolicies read, with the policy imagebutler
	// reads for each (nil when it cannot: not an ECR image, say).
	Policies []*Policy `json:"policies"`
}

// Policy is one Flux ImagePolicy.
type Policy struct {
	ID    string `json:"id"` // namespace:name
	Image string `json:"image"`
	// FluxTag is status.latestRef.tag (status.latestImage's tag on older
	// API versions); "" when Flux recorded none.
	FluxTag string `json:"fluxTag"`
	// Skip says why the policy is not compared, when it is not.
	Skip   string         `json:"skip,omitempty"`
	Policy *policy.Policy `json:"-"`
	// Pick and Result are filled by Compare.
	Pick   string `json:"imagebutlerTag,omitempty"`
	Result string `json:"result,omitempty"` // same, differs, flux-none, imagebutler-none, not compared, list failed: ...
	at     string // file:line
}

// object is one Kubernetes object read from a file.
type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace"`
	} `yaml:"metadata"`
	Spec   yaml.Node `yaml:"spec"`
	Status yaml.Node `yaml:"status"`
	Items  []yaml.Node
	at     string
	node   *yaml.Node
}

func (o *object) id() string {
	ns := o.Metadata.Namespace
	if ns == "" {
		ns = "flux-system"
	}
	return ns + "/" + o.Metadata.Name
}

func (o *object) String() string { return o.Kind + " " + o.id() }

// field returns the node at the dotted path under n ("git.commit.author").
func field(n *yaml.Node, path string) *yaml.Node {
	for _, key := range strings.Split(path, ".") {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}

func str(n *yaml.Node, path string) string {
	if v := field(n, path); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}

// read decodes every object of the files: multi-document YAML or JSON,
// and the items of a List.
func read(files []string) ([]*object, error) {
	var out []*object
	var errs []error
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var doc yaml.Node
			if err := dec.Decode(&doc); err != nil {
				if !errors.Is(err, io.EOF) {
					errs = append(errs, fmt.Errorf("%s: %w", file, err))
				}
				break
			}
			nodes := []*yaml.Node{&doc}
			for len(nodes) > 0 {
				n := nodes[0]
				nodes = nodes[1:]
				if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
					n = n.Content[0]
				}
				if n.Kind != yaml.MappingNode {
					continue
				}
				o := &object{at: fmt.Sprintf("%s:%d", file, n.Line), node: n}
				if err := n.Decode(o); err != nil {
					errs = append(errs, fmt.Errorf("%s:%d: %w", file, n.Line, err))
					continue
				}
				if strings.HasSuffix(o.Kind, "List") {
					for i := range o.Items {
						nodes = append(nodes, &o.Items[i])
					}
					continue
				}
				out = append(out, o)
			}
		}
	}
	return out, errors.Join(errs...)
}

// Flux reads Flux's objects in files and plans the imagebutler setup that
// replaces them. region fills in the region of images that name none
// (none of ECR's do); stateDir is the config's.
func Flux(files []string, stateDir string) (*Plan, error) {
	objs, err := read(files)
	if err != nil {
		return nil, err
	}
	p := &Plan{Warnings: []string{}, Policies: []*Policy{}}
	warn := func(o *object, path, format string, args ...any) {
		at := o.at
		if n := field(&o.Spec, strings.TrimPrefix(path, "spec.")); n != nil && strings.HasPrefix(path, "spec.") {
			at = fmt.Sprintf("%s:%d", strings.SplitN(o.at, ":", 2)[0], n.Line)
		}
		p.Warnings = append(p.Warnings, fmt.Sprintf("%s: %s: %s: %s", at, o, path, fmt.Sprintf(format, args...)))
	}
	byKind := map[string]map[string]*object{}
	var automations, policies []*object
	for _, o := range objs {
		if !strings.Contains(o.APIVersion, "fluxcd.io/") {
			continue
		}
		if byKind[o.Kind] == nil {
			byKind[o.Kind] = map[string]*object{}
		}
		byKind[o.Kind][o.id()] = o
		switch o.Kind {
		case "ImageUpdateAutomation":
			automations = append(automations, o)
		case "ImagePolicy":
			policies = append(policies, o)
		}
	}

	cfg := map[string]any{"stateDir": stateDir}
	var (
		repos     []*repoYAML
		author    config.Author
		template  string // the first automation's messageTemplate
		intervals []time.Duration
		regions   = map[string]int{}
	)
	for _, a := range automations {
		ns, _, _ := strings.Cut(a.id(), "/")
		src := field(&a.Spec, "sourceRef")
		srcNS := str(src, "namespace")
		if srcNS == "" {
			srcNS = ns
		}
		gr := byKind["GitRepository"][srcNS+"/"+str(src, "name")]
		if k := str(src, "kind"); k != "" && k != "GitRepository" || gr == nil {
			warn(a, "spec.sourceRef", "GitRepository %s/%s is not among the files: export it too (flux export source git --all)", srcNS, str(src, "name"))
			continue
		}
		url := str(&gr.Spec, "url")
		branch := str(&a.Spec, "git.checkout.ref.branch")
		if branch == "" {
			branch = str(&gr.Spec, "ref.branch")
		}
		if branch == "" {
			warn(gr, "spec.ref", "imagebutler follows a branch; this GitRepository names a tag, semver range or commit: set branch in imagebutler.yaml")
			branch = "main"
		}
		repo := &repoYAML{URL: url, Branch: branch}
		if push := str(&a.Spec, "git.push.branch"); push != "" && push != branch {
			repo.PushBranch = push
		}
		if field(&a.Spec, "git.push.refspec") != nil {
			warn(a, "spec.git.push.refspec", "does not carry over: imagebutler pushes one branch (pushBranch), or opens a pull request (pullRequest)")
		}
		if f := field(&a.Spec, "git.push.options"); f != nil {
			warn(a, "spec.git.push.options", "does not carry over: imagebutler sends no push options")
		}
		path := strings.TrimPrefix(str(&a.Spec, "update.path"), "./")
		if path = strings.TrimSuffix(path, "/"); path != "" && path != "." {
			repo.Paths = []string{path}
		}
		if s := str(&a.Spec, "update.strategy"); s != "" && s != "Setters" {
			warn(a, "spec.update.strategy", "%q is not Setters, the only strategy Flux and imagebutler have", s)
		}
		if field(&a.Spec, "policySelector") != nil {
			warn(a, "spec.policySelector", "not needed: imagebutler reads each marker's policy from the annotations in the repository")
		}
		auth := &repo.Auth
		if sec := str(&gr.Spec, "secretRef.name"); sec != "" {
			scheme := config.Repository{URL: url}.Scheme()
			if scheme == "ssh" {
				auth.SSHKeyFile, auth.KnownHostsFile = "/etc/imagebutler/git/identity", "/etc/imagebutler/git/known_hosts"
				warn(gr, "spec.secretRef", "Secret %s/%s holds the SSH key and known_hosts: mount its identity and known_hosts keys at /etc/imagebutler/git (auth.sshKeyFile, auth.knownHostsFile)", srcNS, sec)
			} else {
				auth.Username, auth.TokenFile = "git", "/etc/imagebutler/git/token"
				warn(gr, "spec.secretRef", "Secret %s/%s holds the credentials: mount its password (the token) as /etc/imagebutler/git/token (auth.tokenFile; auth.username is its username), or use auth.githubApp on GitHub", srcNS, sec)
			}
		} else if (config.Repository{URL: url}).Scheme() == "ssh" {
			auth.SSHKeyFile, auth.KnownHostsFile = "/etc/imagebutler/git/identity", "/etc/imagebutler/git/known_hosts"
		}
		for _, f := range []string{"verify", "include", "ignore", "proxySecretRef", "recurseSubmodules"} {
			if field(&gr.Spec, f) != nil {
				warn(gr, "spec."+f, "does not carry over: imagebutler reads the branch as it is")
			}
		}
		a2 := config.Author{Name: str(&a.Spec, "git.commit.author.name"), Email: str(&a.Spec, "git.commit.author.email")}
		switch {
		case author == (config.Author{}):
			author = a2
		case a2 != author:
			warn(a, "spec.git.commit.author", "%s <%s> differs from the first automation's %s <%s>: imagebutler has one git.author for every repository", a2.Name, a2.Email, author.Name, author.Email)
		}
		if field(&a.Spec, "git.commit.signingKey") != nil {
			warn(a, "spec.git.commit.signingKey", "export the key from its Secret to a file and set git.signing: {format: openpgp, keyFile} (or format: ssh)")
		}
		if t := str(&a.Spec, "git.commit.messageTemplate"); t != "" && template != "" && t != template {
			warn(a, "spec.git.commit.messageTemplate", "differs from the first automation's: imagebutler has one git.commitMessage for every repository")
		} else if t != "" && template == "" {
			template = t
			if msg, ok := rewriteTemplate(t); ok {
				cfg["git.commitMessage"] = msg
				warn(a, "spec.git.commit.messageTemplate", "rewritten for imagebutler's template data (.Changes, .Policies, .Repository); check it with once --dry-run")
			} else {
				warn(a, "spec.git.commit.messageTemplate", "does not carry over (Flux's .Changed, .AutomationObject and .Values are not imagebutler's .Changes, .Policies and .Repository): the default message is used; write git.commitMessage by hand if you need one")
			}
		}
		if d, err := time.ParseDuration(str(&a.Spec, "interval")); err == nil {
			intervals = append(intervals, d)
		}
		if field(&a.Spec, "suspend") != nil && str(&a.Spec, "suspend") == "true" {
			warn(a, "spec.suspend", "the automation is suspended; its repository is listed anyway: remove it if it should stay off")
		}
		repos = append(repos, repo)
	}
	if len(automations) == 0 {
		p.Warnings = append(p.Warnings, "no ImageUpdateAutomation among the files: the config lists no repository (export them: flux export image update --all)")
	}

	for _, o := range policies {
		ns, name, _ := strings.Cut(o.id(), "/")
		pol := &Policy{ID: ns + ":" + name, at: o.at}
		p.Policies = append(p.Policies, pol)
		ref := field(&o.Spec, "imageRepositoryRef")
		refNS := str(ref, "namespace")
		if refNS == "" {
			refNS = ns
		}
		ir := byKind["ImageRepository"][refNS+"/"+str(ref, "name")]
		pol.FluxTag = str(&o.Status, "latestRef.tag")
		if pol.FluxTag == "" {
			if img := str(&o.Status, "latestImage"); img != "" {
				if i := strings.LastIndex(img, ":"); i > strings.LastIndex(img, "/") {
					pol.FluxTag = img[i+1:]
				}
			}
		}
		if ir == nil {
			pol.Skip = fmt.Sprintf("ImageRepository %s/%s is not among the files", refNS, str(ref, "name"))
			continue
		}
		pol.Image = str(&ir.Spec, "image")
		if m := ecrHostRE.FindStringSubmatch(pol.Image); m != nil {
			regions[m[1]]++
		} else {
			pol.Skip = "not an ECR image: imagebutler reads ECR only"
			continue
		}
		pol.Policy, pol.Skip = translate(ir, o, ns, name)
		if pol.Policy == nil {
			warn(o, "spec", "%s", pol.Skip)
		}
	}

	if len(intervals) > 0 {
		d := slices.Min(intervals)
		cfg["schedule"] = "@every " + d.String()
		if slices.Max(intervals) != d {
			p.Warnings = append(p.Warnings, fmt.Sprintf("the automations' intervals differ (%s to %s): imagebutler has one schedule, the shortest is used", d, slices.Max(intervals)))
		}
	}
	if len(regions) > 0 {
		keys := make([]string, 0, len(regions))
		for r := range regions {
			keys = append(keys, r)
		}
		sort.Slice(keys, func(i, j int) bool {
			return regions[keys[i]] > regions[keys[j]] || regions[keys[i]] == regions[keys[j]] && keys[i] < keys[j]
		})
		cfg["aws.region"] = keys[0]
	}
	if author == (config.Author{}) {
		author = config.Author{Name: "imagebutler", Email: "imagebutler@example.com"}
		p.Warnings = append(p.Warnings, "no automation names a commit author: git.author is a placeholder; set it")
	}
	cfg["git.author"] = author
	cfg["repositories"] = repos
	p.Config, err = render(cfg)
	if err != nil {
		return nil, err
	}
	if _, err := config.Parse("imagebutler.yaml", []byte(p.Config)); err != nil && len(repos) > 0 {
		return p, fmt.Errorf("the config written does not pass check-config: %w", err)
	}
	return p, nil
}

// ecrHostRE matches an ECR image and captures its region.
var ecrHostRE = regexp.MustCompile(`^\d{12}\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/`)

// translate is the policy imagebutler reads for ImagePolicy o of
// ImageRepository ir: the custom annotations' form, which mirrors Flux's
// objects. On failure it says why.
func translate(ir, o *object, ns, name string) (*policy.Policy, string) {
	var repoSpec map[string]any
	var polSpec map[string]any
	if err := ir.Spec.Decode(&repoSpec); err != nil {
		return nil, err.Error()
	}
	if err := o.Spec.Decode(&polSpec); err != nil {
		return nil, err.Error()
	}
	repo := map[string]any{"name": ir.Metadata.Name, "image": repoSpec["image"], "policies": []string{name}}
	if ex, ok := repoSpec["exclusionList"]; ok {
		repo["exclusionList"] = ex
	}
	def := map[string]any{"name": name}
	for _, k := range []string{"policy", "filterTags", "digestReflectionPolicy"} {
		if v, ok := polSpec[k]; ok {
			def[k] = v
		}
	}
	repos, _ := json.Marshal([]any{repo})
	defs, _ := json.Marshal([]any{def})
	ps, errs := policy.Parse(map[string]string{policy.AutomatedKey: "true", policy.CustomReposKey: string(repos), policy.CustomPolicyKey: string(defs)}, ns, "")
	for _, err := range errs {
		var ae *policy.AnnotationError
		if errors.As(err, &ae) && ae.Warning {
			continue
		}
		return nil, fmt.Sprintf("imagebutler cannot read this policy: %v", err)
	}
	if len(ps) != 1 {
		return nil, "imagebutler reads no policy from it"
	}
	return ps[0], ""
}

// render writes the config as YAML, keys in the order a person reads them.
func render(cfg map[string]any) (string, error) {
	var b strings.Builder
	b.WriteString("# Written by imagebutler migrate flux; review every warning it printed.\n")
	fmt.Fprintf(&b, "stateDir: %q\n", cfg["stateDir"])
	if s, ok := cfg["schedule"]; ok {
		fmt.Fprintf(&b, "schedule: %q\n", s)
	}
	if r, ok := cfg["aws.region"]; ok {
		fmt.Fprintf(&b, "aws:\n  region: %s\n", r)
	}
	a := cfg["git.author"].(config.Author)
	fmt.Fprintf(&b, "git:\n  author: {name: %q, email: %q}\n", a.Name, a.Email)
	if m, ok := cfg["git.commitMessage"]; ok {
		fmt.Fprintf(&b, "  commitMessage: %q\n", m)
	}
	repos := cfg["repositories"].([]*repoYAML)
	if len(repos) == 0 {
		b.WriteString("repositories: []\n")
		return b.String(), nil
	}
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(map[string]any{"repositories": repos}); err != nil {
		return "", err
	}
	return b.String(), enc.Close()
}

// repoYAML is a repository of the config written, its keys in reading
// order.
type repoYAML struct {
	URL        string   `yaml:"url"`
	Branch     string   `yaml:"branch"`
	PushBranch string   `yaml:"pushBranch,omitempty"`
	Paths      []string `yaml:"paths,omitempty"`
	Auth       struct {
		Username       string `yaml:"username,omitempty"`
		TokenFile      string `yaml:"tokenFile,omitempty"`
		SSHKeyFile     string `yaml:"sshKeyFile,omitempty"`
		KnownHostsFile string `yaml:"knownHostsFile,omitempty"`
	} `yaml:"auth,omitempty"`
}

// rewriteTemplate rewrites a Flux commit message template for imagebutler
// where it can: a template with no action carries over as it is; one that
// only ranges over the changes with their old and new values is written
// with imagebutler's names. Anything else does not carry over.
func rewriteTemplate(t string) (string, bool) {
	if !strings.Contains(t, "{{") {
		return t, true
	}
	replacer := strings.NewReplacer(
		"{{range .Changed.Changes}}", "{{range .Changes}}",
		"{{ range .Changed.Changes }}", "{{ range .Changes }}",
		".OldValue", ".Old", ".NewValue", ".New",
	)
	out := replacer.Replace(t)
	if strings.Contains(out, ".Changed") || strings.Contains(out, ".AutomationObject") || strings.Contains(out, ".Values") ||
		strings.Contains(out, ".Objects") || strings.Contains(out, ".Updated") {
		return "", false
	}
	return out, true
}
