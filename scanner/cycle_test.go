package scanner

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/policy"
)

// fakeLister serves fixed images per ECR repository and counts calls.
type fakeLister struct {
	mu     sync.Mutex
	images map[string][]policy.Image
	calls  map[policy.ImageRef]int
	// during runs inside List, standing in for someone pushing meanwhile.
	during func()
}

func (f *fakeLister) List(_ context.Context, ref policy.ImageRef) ([]policy.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[ref]++
	if f.during != nil {
		f.during()
		f.during = nil
	}
	imgs, ok := f.images[ref.Repository]
	if !ok {
		return nil, errors.New("RepositoryNotFoundException on " + ref.String())
	}
	return imgs, nil
}

// pushed is a push time in November 2023: the fixtures' images were pushed
// long before the commits that put the markers on (a team adopting the
// butler over an ECR repository it has used for years).
func pushed(sec int) time.Time { return time.Unix(int64(1_700_000_000+sec), 0).UTC() }

const manifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  annotations:
    app.lilly.com/flux.automated: "true"
    app.lilly.com/flux.simple.web: "283234040926;shop_web;glob:sha-*"
    app.lilly.com/flux.simple.api: "283234040926;shop_api;glob:sha-*"
spec:
  template:
    spec:
      containers:
        - image: 283234040926.dkr.ecr.us-east-2.amazonaws.com/shop_web:sha-old # {"$imagepolicy": "shop:web"}
        - image: 283234040926.dkr.ecr.us-east-2.amazonaws.com/shop_api:sha-old # {"$imagepolicy": "shop:api"}
`

var person = &object.Signature{Name: "A Person", Email: "person@example.com"}

// newRemote creates a bare repository holding files on main, and returns its path.
func newRemote(t testing.TB, files map[string]string) string {
	t.Helper()
	bare := filepath.Join(t.TempDir(), "remote.git")
	if _, err := git.PlainInitWithOptions(bare, &git.PlainInitOptions{Bare: true, InitOptions: git.InitOptions{DefaultBranch: plumbing.Main}}); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(t.TempDir(), "seed")
	r, err := git.PlainInitWithOptions(work, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.Main}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateRemote(&gitconfig.RemoteConfig{Name: "origin", URLs: []string{bare}}); err != nil {
		t.Fatal(err)
	}
	commitFiles(t, r, work, files)
	if err := r.Push(&git.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	return bare
}

func commitFiles(t testing.TB, r *git.Repository, work string, files map[string]string) {
	t.Helper()
	wt, _ := r.Worktree()
	for name, content := range files {
		full := filepath.Join(work, name)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		wt.Add(name)
	}
	sig := *person
	sig.When = time.Now()
	if _, err := wt.Commit("person's change", &git.CommitOptions{Author: &sig}); err != nil {
		t.Fatal(err)
	}
}

// personPushes clones bare, commits files and pushes, as a person would.
func personPushes(t *testing.T, bare string, files map[string]string) plumbing.Hash {
	t.Helper()
	work := filepath.Join(t.TempDir(), "person")
	r, err := git.PlainClone(work, false, &git.CloneOptions{URL: bare})
	if err != nil {
		t.Fatal(err)
	}
	commitFiles(t, r, work, files)
	if err := r.Push(&git.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	h, _ := r.Head()
	return h.Hash()
}

func testConfig(t testing.TB, urls ...string) *config.Config {
	c := &config.Config{
		StateDir: t.TempDir(),
		AWS:      config.AWS{Region: "us-east-2"},
		Git:      config.Git{Author: config.Author{Name: "Butler", Email: "butler@example.com"}},
	}
	for _, u := range urls {
		c.Repositories = append(c.Repositories, config.Repository{URL: u, Branch: "main", PushBranch: "main", Paths: []string{"."}})
	}
	return c
}

func newTestScanner(cfg *config.Config, l Lister) *Scanner {
	return New(cfg, l, slog.New(slog.NewTextHandler(io.Discard, nil)), WithBackoff(func(int) time.Duration { return time.Millisecond }))
}

func headFile(t *testing.T, bare, name string) (string, *object.Commit) {
	t.Helper()
	r, err := git.PlainOpen(bare)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := r.Reference(plumbing.NewBranchReferenceName("main"), true)
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.CommitObject(ref.Hash())
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.File(name)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := f.Contents()
	return s, c
}

func TestRunOnceListsEachECRRepositoryOnce(t *testing.T) {
	a := newRemote(t, map[string]string{"web.yaml": manifest})
	b := newRemote(t, map[string]string{"deploy/web.yaml": manifest})
	l := &fakeLister{calls: map[policy.ImageRef]int{}, images: map[string][]policy.Image{
		"shop_web": {{Tags: []string{"sha-1"}, PushedAt: pushed(1)}, {Tags: []string{"sha-2"}, PushedAt: pushed(2)}},
		"shop_api": {{Tags: []string{"sha-9"}, PushedAt: pushed(1)}},
	}}
	results := newTestScanner(testConfig(t, a, b), l).RunOnce(context.Background())
	for _, r := range results {
		if r.Err != nil || r.Commit == "" || len(r.Changes) != 2 {
			t.Errorf("%s: err %v, commit %q, %d changes", r.Repository, r.Err, r.Commit, len(r.Changes))
		}
	}
	if len(l.calls) != 2 {
		t.Errorf("listed %d ECR repositories, want 2: %v", len(l.calls), l.calls)
	}
	for ref, n := range l.calls {
		if n != 1 {
			t.Errorf("%s listed %d times, want once", ref, n)
		}
	}
	got, c := headFile(t, a, "web.yaml")
	want := strings.NewReplacer("shop_web:sha-old", "shop_web:sha-2", "shop_api:sha-old", "shop_api:sha-9").Replace(manifest)
	if got != want {
		t.Errorf("web.yaml:\n%s\nwant:\n%s", got, want)
	}
	if c.Author.Name != "Butler" || c.Committer.Email != "butler@example.com" || c.NumParents() != 1 {
		t.Errorf("commit by %s / %s with %d parents", c.Author, c.Committer, c.NumParents())
	}
}

func TestRunOnceRetriesRejectedPushKeepingPersonsCommit(t *testing.T) {
	bare := newRemote(t, map[string]string{"web.yaml": manifest})
	var theirs plumbing.Hash
	l := &fakeLister{calls: map[policy.ImageRef]int{}, images: map[string][]policy.Image{
		"shop_web": {{Tags: []string{"sha-2"}, PushedAt: pushed(2)}},
		"shop_api": {{Tags: []string{"sha-9"}, PushedAt: pushed(1)}},
	}}
	// Someone pushes after the butler synced and before it pushes.
	l.during = func() { theirs = personPushes(t, bare, map[string]string{"README.md": "hello\n"}) }

	r := newTestScanner(testConfig(t, bare), l).RunOnce(context.Background())[0]
	if r.Err != nil || r.Commit == "" {
		t.Fatalf("RunOnce: err %v, commit %q", r.Err, r.Commit)
	}
	_, head := headFile(t, bare, "web.yaml")
	if head.Hash.String() != r.Commit {
		t.Errorf("remote head %s, want the butler's %s", head.Hash, r.Commit)
	}
	if len(head.ParentHashes) != 1 || head.ParentHashes[0] != theirs {
		t.Errorf("butler's commit parents %v, want the person's %s", head.ParentHashes, theirs)
	}
	if got, _ := headFile(t, bare, "README.md"); got != "hello\n" {
		t.Errorf("person's README.md = %q", got)
	}
}

func TestRunOnceListingFailureFailsOnlyThatPolicy(t *testing.T) {
	bare := newRemote(t, map[string]string{"web.yaml": manifest})
	l := &fakeLister{calls: map[policy.ImageRef]int{}, images: map[string][]policy.Image{
		"shop_web": {{Tags: []string{"sha-2"}, PushedAt: pushed(2)}},
	}}
	r := newTestScanner(testConfig(t, bare), l).RunOnce(context.Background())[0]
	if r.Err == nil || !strings.Contains(r.Err.Error(), "policy shop:api: RepositoryNotFoundException on 283234040926/shop_api in us-east-2") {
		t.Errorf("err = %v, want the api listing failure", r.Err)
	}
	if r.Commit == "" || len(r.Changes) != 1 || r.Changes[0].Policy != "shop:web" {
		t.Errorf("commit %q, changes %+v; want shop:web still updated", r.Commit, r.Changes)
	}
}

// Two policies on one failing ECR repository: the error is reported once,
// naming both; the markers only say that the listing failed.
func TestListingFailureReportedOncePerECRRepository(t *testing.T) {
	twice := strings.Replace(manifest, `    app.lilly.com/flux.simple.web: "283234040926;shop_web;glob:sha-*"`,
		`    app.lilly.com/flux.simple.web: "283234040926;shop_api;glob:sha-*"`, 1)
	bare := newRemote(t, map[string]string{"web.yaml": twice})
	denied := errors.New("get identity: get credentials: failed to refresh cached credentials")
	l := listerFunc(func(context.Context, policy.ImageRef) ([]policy.Image, error) { return nil, denied })
	r := newTestScanner(testConfig(t, bare), l).RunOnce(context.Background())[0]
	if r.Err == nil || r.Err.Error() != "policies shop:api, shop:web: "+denied.Error() {
		t.Errorf("err = %v", r.Err)
	}
	for _, p := range r.Problems {
		if strings.Contains(p.Error(), "credentials") {
			t.Errorf("a marker repeats the listing error: %v", p)
		}
	}
}

// A failed annotation is one problem: its policy's markers are left as
// they are, unresolved, without a second problem saying that no annotation
// defines the policy; the other policy still updates.
func TestFailedAnnotationIsOneProblem(t *testing.T) {
	broken := strings.Replace(manifest, `"283234040926;shop_api;glob:sha-*"`, `"28323404092;shop_api;glob:sha-*"`, 1)
	bare := newRemote(t, map[string]string{"web.yaml": broken})
	l := &fakeLister{calls: map[policy.ImageRef]int{}, images: map[string][]policy.Image{
		"shop_web": {{Tags: []string{"sha-2"}, PushedAt: pushed(2)}},
		"shop_api": {{Tags: []string{"sha-2"}, PushedAt: pushed(2)}},
	}}
	r := newTestScanner(testConfig(t, bare), l).RunOnce(context.Background())[0]
	var got []string
	for _, p := range r.Problems {
		got = append(got, p.Error())
	}
	want := []string{`web.yaml: Deployment shop/web: annotation app.lilly.com/flux.simple.api: "28323404092" is neither a 12-digit AWS account id nor an ECR registry host`}
	if !slices.Equal(got, want) {
		t.Errorf("problems %q, want %q", got, want)
	}
	if len(r.Changes) != 1 || r.Changes[0].Policy != "shop:web" {
		t.Errorf("changes %+v, want shop:web alone", r.Changes)
	}
	for _, m := range r.Markers {
		if m.Policy == "shop:api" && m.State != MarkerUnresolved {
			t.Errorf("marker %s: state %q, want %q", m.Location, m.State, MarkerUnresolved)
		}
	}
}

type listerFunc func(context.Context, policy.ImageRef) ([]policy.Image, error)

func (f listerFunc) List(ctx context.Context, ref policy.ImageRef) ([]policy.Image, error) {
	return f(ctx, ref)
}

// A bare account id with no region known fails the repository (not a
// warning), and the policies that name their region still apply.
func TestRunOnceUnknownRegionFailsRepository(t *testing.T) {
	withHost := strings.Replace(manifest, `"283234040926;shop_web;`, `"283234040926.dkr.ecr.us-east-2.amazonaws.com;shop_web;`, 1)
	bare := newRemote(t, map[string]string{"web.yaml": withHost})
	l := &fakeLister{calls: map[policy.ImageRef]int{}, images: map[string][]policy.Image{
		"shop_web": {{Tags: []string{"sha-2"}, PushedAt: pushed(2)}},
		"shop_api": {{Tags: []string{"sha-2"}, PushedAt: pushed(2)}},
	}}
	cfg := testConfig(t, bare)
	cfg.AWS.Region = ""
	r := newTestScanner(cfg, l).RunOnce(context.Background())[0]
	if !errors.Is(r.Err, policy.ErrNoRegion) || !strings.Contains(r.Err.Error(), "web.yaml: Deployment shop/web: annotation app.lilly.com/flux.simple.api: account 283234040926: no AWS region known") {
		t.Errorf("err = %v, want the api annotation's unknown region", r.Err)
	}
	if r.Outcome() != OutcomePartial || len(r.Changes) != 1 || r.Changes[0].Policy != "shop:web" {
		t.Errorf("outcome %q, changes %+v; want shop:web still updated", r.Outcome(), r.Changes)
	}
	for _, p := range r.Problems {
		if errors.Is(p, policy.ErrNoRegion) {
			t.Errorf("the region failure is also a problem: %v", p)
		}
	}
}

// A custom policy's digestReflectionPolicy reaches the marker: the listing's
// digest is pinned with the tag, with no extra ECR call.
func TestRunOnceReflectsDigest(t *testing.T) {
	const pinned = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  annotations:
    app.lilly.com/flux.automated: "true"
    app.lilly.com/flux.v2.repos: '[{"name": "r", "image": "283234040926.dkr.ecr.us-east-2.amazonaws.com/shop_web", "policies": ["web"]}]'
    app.lilly.com/flux.v2.policies: '[{"name": "web", "policy": {"newest": {}}, "digestReflectionPolicy": "Always"}]'
spec:
  template:
    spec:
      containers:
        - image: 283234040926.dkr.ecr.us-east-2.amazonaws.com/shop_web:sha-old # {"$imagepolicy": "shop:web"}
`
	bare := newRemote(t, map[string]string{"web.yaml": pinned})
	l := &fakeLister{calls: map[policy.ImageRef]int{}, images: map[string][]policy.Image{
		"shop_web": {{Tags: []string{"sha-2"}, Digest: "sha256:2222", PushedAt: pushed(2)}},
	}}
	r := newTestScanner(testConfig(t, bare), l).RunOnce(context.Background())[0]
	want := "283234040926.dkr.ecr.us-east-2.amazonaws.com/shop_web:sha-2@sha256:2222"
	if r.Err != nil || len(r.Changes) != 1 || r.Changes[0].New != want {
		t.Errorf("err %v, changes %+v; want %s", r.Err, r.Changes, want)
	}
	if n := len(l.calls); n != 1 {
		t.Errorf("ECR repositories listed = %d, want 1", n)
	}
}

func TestWorkDir(t *testing.T) {
	a := WorkDir("/state", config.Repository{URL: "https://u:secret@github.com/example/apps.git", PushBranch: "main"})
	b := WorkDir("/state", config.Repository{URL: "https://u:secret@github.com/example/apps.git", PushBranch: "butler"})
	if a == b || !strings.HasPrefix(a, "/state/apps-") || strings.Contains(a, "secret") {
		t.Errorf("WorkDir = %q and %q", a, b)
	}
}

func TestLockStateDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	release, err := LockStateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockStateDir(dir); !errors.Is(err, ErrStateDirLocked) {
		t.Errorf("second lock: %v, want ErrStateDirLocked", err)
	}
	release()
	again, err := LockStateDir(dir)
	if err != nil {
		t.Errorf("lock after release: %v", err)
	} else {
		again()
	}
}

func TestRunOnceSignsCommits(t *testing.T) {
	entity, err := openpgp.NewEntity("Butler", "", "butler@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	var priv, pub bytes.Buffer
	w, _ := armor.Encode(&priv, openpgp.PrivateKeyType, nil)
	entity.SerializePrivate(w, nil)
	w.Close()
	w, _ = armor.Encode(&pub, openpgp.PublicKeyType, nil)
	entity.Serialize(w)
	w.Close()
	keyFile := filepath.Join(t.TempDir(), "key.asc")
	os.WriteFile(keyFile, priv.Bytes(), 0o600)

	bare := newRemote(t, map[string]string{"web.yaml": manifest})
	cfg := testConfig(t, bare)
	cfg.Git.SigningKeyFile = keyFile
	l := &fakeLister{calls: map[policy.ImageRef]int{}, images: map[string][]policy.Image{
		"shop_web": {{Tags: []string{"sha-2"}, PushedAt: pushed(2)}},
		"shop_api": {{Tags: []string{"sha-9"}, PushedAt: pushed(1)}},
	}}
	if r := newTestScanner(cfg, l).RunOnce(context.Background())[0]; r.Err != nil {
		t.Fatal(r.Err)
	}
	_, head := headFile(t, bare, "web.yaml")
	if head.PGPSignature == "" {
		t.Fatal("the butler's commit is not signed")
	}
	if _, err := head.Verify(pub.String()); err != nil {
		t.Errorf("signature does not verify: %v", err)
	}
}

func TestPushBranchCreatedFromBranchThenBuiltOn(t *testing.T) {
	bare := newRemote(t, map[string]string{"web.yaml": manifest})
	cfg := testConfig(t, bare)
	cfg.Repositories[0].PushBranch = "butler"
	l := &fakeLister{calls: map[policy.ImageRef]int{}, images: map[string][]policy.Image{
		"shop_web": {{Tags: []string{"sha-1"}, PushedAt: pushed(1)}},
		"shop_api": {{Tags: []string{"sha-9"}, PushedAt: pushed(1)}},
	}}
	s := newTestScanner(cfg, l)
	if r := s.RunOnce(context.Background())[0]; r.Err != nil || r.Commit == "" {
		t.Fatalf("first cycle: %v, commit %q", r.Err, r.Commit)
	}
	r, _ := git.PlainOpen(bare)
	main, _ := r.Reference(plumbing.NewBranchReferenceName("main"), true)
	butler, err := r.Reference(plumbing.NewBranchReferenceName("butler"), true)
	if err != nil {
		t.Fatalf("push branch not created: %v", err)
	}
	first, _ := r.CommitObject(butler.Hash())
	if len(first.ParentHashes) != 1 || first.ParentHashes[0] != main.Hash() {
		t.Errorf("butler branch commit's parent = %v, want main %s", first.ParentHashes, main.Hash())
	}
	// A newer tag: the second commit goes on top of the push branch, main stays.
	l.images["shop_web"] = append(l.images["shop_web"], policy.Image{Tags: []string{"sha-2"}, PushedAt: pushed(2)})
	res := s.RunOnce(context.Background())[0]
	if res.Err != nil || res.Commit == "" {
		t.Fatalf("second cycle: %v, commit %q", res.Err, res.Commit)
	}
	second, _ := r.CommitObject(plumbing.NewHash(res.Commit))
	if len(second.ParentHashes) != 1 || second.ParentHashes[0] != first.Hash {
		t.Errorf("second commit's parent = %v, want the first butler commit %s", second.ParentHashes, first.Hash)
	}
	if again, _ := r.Reference(plumbing.NewBranchReferenceName("main"), true); again.Hash() != main.Hash() {
		t.Errorf("main moved to %s", again.Hash())
	}
}
