package peers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
)

// peerDifferences are the peer cases where imagebutler deliberately differs
// from the peer whose test the case comes from, each with the reason (the
// docs/annotations.md, "What differs from Flux, on purpose"). A case listed here must
// fail; one that passes is an error, so the list cannot go stale. Keep it
// this short.
var peerDifferences = map[string]string{
	"irc-numerical-invalid-value":           "numerical skips tags that are not numbers (and counts them) instead of failing the whole policy",
	"irc-fetch-tags-att-sbom":               "the default exclusion also drops .att and .sbom tags, not only .sig",
	"flux-marker-block-scalar":              "a marker on a block scalar is reported, not rewritten",
	"flux-seq-head-comment-variants":        "a marker comment line under another comment line is applied (Flux reads the whole head comment as JSON and skips it)",
	"flux-image-with-digest":                "a digest already in the value is kept in step with the tag, never dropped",
	"irc-numerical-ints-desc":               "a tag outside the image reference grammar (a leading -) is dropped where ECR listings enter, so the pick is among valid tags",
	"irc-numerical-floats-desc":             "a tag outside the image reference grammar (a leading -) is dropped where ECR listings enter, so the pick is among valid tags",
	"irc-numerical-new-orders":              "a tag outside the image reference grammar (a leading -) is dropped where ECR listings enter, so the pick is among valid tags",
	"fluxpkg-parseversion-metadata-hyphen":  "a tag outside the image reference grammar (a +) is dropped where ECR listings enter, so the pick is among valid tags",
	"fluxpkg-parseversion-pre-and-metadata": "a tag outside the image reference grammar (a +) is dropped where ECR listings enter, so the pick is among valid tags",
}

// peerCase is one case of testdata/peers; testdata/peers/README.md
// documents the format.
type peerCase struct {
	Description string            `json:"description"`
	Namespace   string            `json:"namespace"`
	Paths       []string          `json:"paths"`
	AWSAccounts map[string]string `json:"aws_accounts"`
	ECR         []struct {
		Account      string `json:"account"`
		Region       string `json:"region"`
		Repositories map[string][]struct {
			Tags  []string `json:"tags"`
			Order int      `json:"order"`
		} `json:"repositories"`
	} `json:"ecr"`
	ExpectExit           []int    `json:"expect_exit"`
	ExpectNoCommit       bool     `json:"expect_no_commit"`
	ExpectOutputContains []string `json:"expect_output_contains"`
	ExpectStdoutContains []string `json:"expect_stdout_contains"`
	ChangedPolicies      []string `json:"changed_policies"`
}

// peerServers is how many moto servers the peer cases share, one case at a
// time each: a case mostly waits for moto's whole-second push times.
const peerServers = 4

// TestPeers runs the 138 cases derived from the test suites of Flux and Argo
// CD Image Updater (../testdata/peers) through the real binary against moto and
// git http-backend, as their README says: ECR first, then a person's commit,
// then `once` twice. Cases run on peerServers moto servers at once, each
// reset between cases.
func TestPeers(t *testing.T) {
	t.Parallel() // mostly waiting for moto's seconds: with the other slow waiters, after the rest
	needPeers(t)
	dirs, err := filepath.Glob("../testdata/peers/*/case.json")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no peer cases: %v", err)
	}
	sort.Strings(dirs)
	root := t.TempDir()
	git, err := testpeers.NewGitServer(filepath.Join(root, "remote"), gitUser, gitToken)
	if err != nil {
		t.Fatal(err)
	}
	defer git.Close()
	os.MkdirAll(git.Root, 0o755)

	servers := make([]*testpeers.Moto, peerServers)
	var wg sync.WaitGroup
	errs := make([]error, peerServers)
	for i := range servers {
		wg.Go(func() { servers[i], errs[i] = testpeers.StartMoto(context.Background()) })
	}
	wg.Wait()
	for i, m := range servers {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		defer m.Stop()
	}

	cases := make(chan string)
	var (
		mu       sync.Mutex
		passed   int
		expected int
	)
	for _, m := range servers {
		wg.Go(func() {
			for file := range cases {
				dir := filepath.Dir(file)
				name := filepath.Base(dir)
				reason, differs := peerDifferences[name]
				t.Run(name, func(t *testing.T) {
					problems, err := runPeerCase(t, m, git, dir)
					switch {
					case err != nil:
						t.Fatal(err) // the case could not be set up or run
					case differs && len(problems) == 0:
						t.Errorf("passes now; remove it from peerDifferences (%s)", reason)
					case differs:
						t.Logf("expected difference (%s): %s", reason, strings.Join(problems, "; "))
						mu.Lock()
						expected++
						mu.Unlock()
					case len(problems) > 0:
						t.Errorf("%s\n%s", strings.Join(problems, "\n"), peerCaseDescription(dir))
					default:
						mu.Lock()
						passed++
						mu.Unlock()
					}
				})
			}
		})
	}
	for _, d := range dirs {
		cases <- d
	}
	close(cases)
	wg.Wait()
	t.Logf("peer cases: %d passed, %d expected differences, of %d", passed, expected, len(dirs))
}

// peerCaseDescription is the case's description, for a failure message.
func peerCaseDescription(dir string) string {
	var c peerCase
	b, _ := os.ReadFile(filepath.Join(dir, "case.json"))
	json.Unmarshal(b, &c)
	return "case: " + c.Description
}

// runPeerCase runs the case in dir against moto m (reset first) and git,
// and returns how the butler's behaviour differs from the case's
// expectations; err is a failure to set the case up or run the binary.
func runPeerCase(t *testing.T, m *testpeers.Moto, git *testpeers.GitServer, dir string) (problems []string, err error) {
	ctx := t.Context()
	raw, err := os.ReadFile(filepath.Join(dir, "case.json"))
	if err != nil {
		return nil, err
	}
	var c peerCase
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("case.json: %w", err)
	}
	if len(c.ExpectExit) == 0 {
		c.ExpectExit = []int{0}
	}
	name := filepath.Base(dir)

	// 1. ECR: the case's repositories, its images pushed in ascending order,
	// each order in a later whole second than the one before.
	var digests map[string]string
	for attempt := 1; ; attempt++ {
		if err := m.Reset(ctx); err != nil {
			return nil, err
		}
		var err error
		digests, err = seedPeerECR(ctx, m, c)
		if errors.Is(err, errSplitSecond) && attempt < 5 {
			continue
		}
		if err != nil {
			return nil, err
		}
		break
	}

	// 2. A person commits original/ to a bare repository's main.
	files := map[string]string{}
	original := filepath.Join(dir, "original")
	if err := filepath.WalkDir(original, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		rel, _ := filepath.Rel(original, path)
		files[filepath.ToSlash(rel)] = string(b)
		return err
	}); err != nil {
		return nil, err
	}
	url, err := git.InitRepo(name, "main", files)
	if err != nil {
		return nil, err
	}
	bare := filepath.Join(git.Root, name+".git")
	personsHead, err := testpeers.Git(bare, "rev-parse", "main")
	if err != nil {
		return nil, err
	}
	personsHead = strings.TrimSpace(personsHead)

	// 3. once, with the case's repository settings.
	work := t.TempDir()
	tokenFile := filepath.Join(work, "token")
	os.WriteFile(tokenFile, []byte(gitToken+"\n"), 0o600)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "stateDir: %q\nlisten: \"\"\naws:\n  region: us-east-2\n  endpoint: %s\n", filepath.Join(work, "state"), m.Endpoint)
	if len(c.AWSAccounts) > 0 {
		cfg.WriteString("  accounts:\n")
		for account, role := range c.AWSAccounts {
			fmt.Fprintf(&cfg, "    %q: {roleARN: %q}\n", account, role)
		}
	}
	fmt.Fprintf(&cfg, "git:\n  author: {name: %q, email: %q}\nrepositories:\n  - url: %q\n    branch: main\n    auth: {username: %s, tokenFile: %q}\n",
		butlerName, butlerEmail, url, gitUser, tokenFile)
	if c.Namespace != "" {
		fmt.Fprintf(&cfg, "    namespace: %q\n", c.Namespace)
	}
	if len(c.Paths) > 0 {
		paths, _ := json.Marshal(c.Paths)
		fmt.Fprintf(&cfg, "    paths: %s\n", paths)
	}
	config := filepath.Join(work, "imagebutler.yaml")
	if err := os.WriteFile(config, []byte(cfg.String()), 0o644); err != nil {
		return nil, err
	}
	runOnce := func() (stdout, stderr string, code int, err error) {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, "once", "--config", config)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err = cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok && ctx.Err() == nil {
			code, err = ee.ExitCode(), nil
		}
		return out.String(), errb.String(), code, err
	}
	stdout, stderr, code, err := runOnce()
	if err != nil {
		return nil, fmt.Errorf("once: %w\n%s", err, stderr)
	}
	output := stdout + stderr
	if !slices.Contains(c.ExpectExit, code) {
		problems = append(problems, fmt.Sprintf("once exited %d, want one of %v; output:\n%s", code, c.ExpectExit, output))
	}
	for _, want := range c.ExpectOutputContains {
		if !strings.Contains(output, want) {
			problems = append(problems, fmt.Sprintf("output lacks %q; output:\n%s", want, output))
		}
	}
	for _, want := range c.ExpectStdoutContains {
		if !strings.Contains(stdout, want) {
			problems = append(problems, fmt.Sprintf("stdout lacks %q; stdout:\n%s", want, stdout))
		}
	}

	// 4. Exactly one new commit, the butler's, on top of the person's (or
	// none), naming every changed policy; a fresh clone equal to expected/.
	head, err := testpeers.Git(bare, "rev-parse", "main")
	if err != nil {
		return nil, err
	}
	head = strings.TrimSpace(head)
	switch {
	case c.ExpectNoCommit && head != personsHead:
		problems = append(problems, "the butler pushed a commit; want none")
	case !c.ExpectNoCommit && head == personsHead:
		problems = append(problems, "the butler pushed no commit; output:\n"+output)
	case !c.ExpectNoCommit:
		log, err := testpeers.Git(bare, "log", "--format=%P%n%an <%ae>%n%B", "-1", "main")
		if err != nil {
			return nil, err
		}
		parent, rest, _ := strings.Cut(log, "\n")
		author, msg, _ := strings.Cut(rest, "\n")
		if parent != personsHead {
			problems = append(problems, fmt.Sprintf("the butler's commit has parents %q, want the person's %s alone", parent, personsHead))
		}
		if author != butlerName+" <"+butlerEmail+">" {
			problems = append(problems, "the new commit's author is "+author)
		}
		changed := c.ChangedPolicies
		if changed == nil {
			if changed, err = changedPolicies(dir); err != nil {
				return nil, err
			}
		}
		for _, id := range changed {
			if !strings.Contains(msg, id) {
				problems = append(problems, fmt.Sprintf("the commit message does not name %s:\n%s", id, msg))
			}
		}
	}
	clone := filepath.Join(t.TempDir(), "clone")
	if _, err := testpeers.Git("", "clone", "--quiet", bare, clone); err != nil {
		return nil, err
	}
	problems = append(problems, compareTree(filepath.Join(dir, "expected"), clone, digests)...)

	// 5. A second once pushes nothing.
	if _, stderr, code, err := runOnce(); err != nil {
		return nil, fmt.Errorf("second once: %w\n%s", err, stderr)
	} else if !slices.Contains(c.ExpectExit, code) {
		problems = append(problems, fmt.Sprintf("the second once exited %d, want one of %v", code, c.ExpectExit))
	}
	if again, _ := testpeers.Git(bare, "rev-parse", "main"); strings.TrimSpace(again) != head {
		problems = append(problems, "the second once pushed a commit")
	}
	return problems, nil
}

// errSplitSecond says the pushes of one order did not all land in one
// second (the machine was too slow): the case is seeded again.
var errSplitSecond = errors.New("the pushes of one order spread over two seconds")

// seedPeerECR creates the case's ECR repositories and pushes its images in
// ascending order, each order in a later whole second than the one before
// (moto keeps push times in whole seconds), and returns each tag's digest
// by "repository:tag".
func seedPeerECR(ctx context.Context, m *testpeers.Moto, c peerCase) (map[string]string, error) {
	type push struct {
		client  *ecr.Client
		account string
		repo    string
		tags    []string
		order   int
	}
	var pushes []push
	for _, e := range c.ECR {
		client := m.ECR(e.Region)
		if role, ok := c.AWSAccounts[e.Account]; ok {
			var err error
			if client, err = m.AssumedECR(ctx, e.Region, role); err != nil {
				return nil, err
			}
		}
		for repo, images := range e.Repositories {
			if err := testpeers.CreateRepository(ctx, client, e.Account, repo); err != nil {
				return nil, err
			}
			for _, img := range images {
				pushes = append(pushes, push{client, e.Account, repo, img.Tags, img.Order})
			}
		}
	}
	sort.SliceStable(pushes, func(i, j int) bool { return pushes[i].order < pushes[j].order })
	digests := map[string]string{}
	var (
		last  time.Time // when the last order's pushes were done
		group time.Time // the whole second the pushes of this order started in
	)
	for i, p := range pushes {
		switch {
		case i > 0 && p.order != pushes[i-1].order:
			time.Sleep(time.Until(last.Truncate(time.Second).Add(time.Second)))
			group = time.Now().Truncate(time.Second)
		case i == 0 && len(pushes) > 1 && pushes[1].order == p.order:
			// Images of one order share a second: start at a second's
			// beginning, so that a loaded machine has the whole of it.
			time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
			group = time.Now().Truncate(time.Second)
		case i == 0:
			group = time.Now().Truncate(time.Second)
		}
		digest, err := testpeers.PushImageTags(ctx, p.client, p.account, p.repo, p.tags...)
		if err != nil {
			return nil, err
		}
		last = time.Now()
		if i > 0 && p.order == pushes[i-1].order && !last.Truncate(time.Second).Equal(group) {
			return nil, errSplitSecond
		}
		for _, tag := range p.tags {
			digests[p.repo+":"+tag] = digest
		}
	}
	return digests, nil
}

var (
	digestPlaceholder = regexp.MustCompile(`\{\{digest:([^}]+):([^:}]+)\}\}`)
	markerPolicy      = regexp.MustCompile(`"\$imagepolicy"\s*:\s*"([^":]+):([^":]+)`)
)

// compareTree reports every difference between the files under want (with
// {{digest:REPO:TAG}} replaced by the digest) and the clone got, byte for
// byte; .git is not compared.
func compareTree(want, got string, digests map[string]string) []string {
	read := func(root string) map[string][]byte {
		files := map[string][]byte{}
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == ".git" {
				return filepath.SkipDir
			}
			if !d.IsDir() {
				rel, _ := filepath.Rel(root, path)
				files[filepath.ToSlash(rel)], _ = os.ReadFile(path)
			}
			return nil
		})
		return files
	}
	wantFiles, gotFiles := read(want), read(got)
	var problems []string
	for name, w := range wantFiles {
		w = digestPlaceholder.ReplaceAllFunc(w, func(m []byte) []byte {
			sub := digestPlaceholder.FindSubmatch(m)
			if d, ok := digests[string(sub[1])+":"+string(sub[2])]; ok {
				return []byte(d)
			}
			return m
		})
		g, ok := gotFiles[name]
		switch {
		case !ok:
			problems = append(problems, name+": missing from the pushed tree")
		case !bytes.Equal(w, g):
			problems = append(problems, fmt.Sprintf("%s differs from expected/:\n--- want\n%s\n--- got\n%s", name, w, g))
		}
	}
	for name := range gotFiles {
		if _, ok := wantFiles[name]; !ok {
			problems = append(problems, name+": in the pushed tree, not in expected/")
		}
	}
	sort.Strings(problems)
	return problems
}

// changedPolicies are the ids of the policies whose markers' lines differ
// between the case's original/ and expected/ (a marker is on the line, or
// on the comment line above a sequence item).
func changedPolicies(dir string) ([]string, error) {
	var ids []string
	expected := filepath.Join(dir, "expected")
	err := filepath.WalkDir(expected, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(expected, path)
		after, _ := os.ReadFile(path)
		before, _ := os.ReadFile(filepath.Join(dir, "original", rel))
		a, b := strings.Split(string(after), "\n"), strings.Split(string(before), "\n")
		for i, line := range a {
			if i < len(b) && b[i] == line {
				continue
			}
			m := markerPolicy.FindStringSubmatch(line)
			if m == nil && i > 0 {
				m = markerPolicy.FindStringSubmatch(a[i-1])
			}
			if m != nil && !slices.Contains(ids, m[1]+":"+m[2]) {
				ids = append(ids, m[1]+":"+m[2])
			}
		}
		return nil
	})
	return ids, err
}
