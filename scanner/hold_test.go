package scanner

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/google/go-cmp/cmp"

	"github.com/imagebutler/imagebutler/gitwriter"
	"github.com/imagebutler/imagebutler/policy"
)

// holdManifest is a team's first commit: placeholder values the butler
// never wrote (a version above every listed one, a tag of another stream,
// a tag ECR never held) and a policy on hold.
const holdManifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  annotations:
    app.lilly.com/flux.automated: "true"
    app.lilly.com/flux.simple.ver: "283234040926;shop_ver;semver:*"
    app.lilly.com/flux.simple.new: "283234040926;shop_new;glob:sha-*"
    app.lilly.com/flux.simple.held: "283234040926;shop_new;glob:sha-*"
    app.lilly.com/flux.hold.held: "sha-2 breaks checkout"
spec:
  template:
    spec:
      containers:
        - image: 283234040926.dkr.ecr.us-east-2.amazonaws.com/shop_ver:9.9.9 # {"$imagepolicy": "shop:ver"}
        - image: 283234040926.dkr.ecr.us-east-2.amazonaws.com/shop_new:qa-sha-06c5953 # {"$imagepolicy": "shop:new"}
        - image: 283234040926.dkr.ecr.us-east-2.amazonaws.com/shop_new:sha-1 # {"$imagepolicy": "shop:held"}
      env:
        - name: DIGEST
          value: sha256:0 # {"$imagepolicy": "shop:new:digest"}
`

type markerState struct{ Location, State, HeldBy, Reason string }

func markerStates(r RepoResult) []markerState {
	var out []markerState
	for _, m := range r.Markers {
		out = append(out, markerState{m.Location, m.State, m.HeldBy, m.Reason})
	}
	return out
}

// changedTo lists a cycle's changes as "policy value-after-the-last-: or /".
func changedTo(r RepoResult) []string {
	var changed []string
	for _, c := range r.Changes {
		changed = append(changed, c.Policy+" "+c.New[strings.LastIndexAny(c.New, ":/")+1:])
	}
	return changed
}

// The butler replaces values it never wrote (onboarding), never downgrades
// a value it wrote, and a hold stops a policy.
func TestHoldsAndDowngradeGuard(t *testing.T) {
	bare := newRemote(t, map[string]string{"web.yaml": holdManifest})
	l := &fakeLister{calls: map[policy.ImageRef]int{}, images: map[string][]policy.Image{
		// Pushed long before the team's commit, as when a team adopts the butler.
		"shop_ver": {{Tags: []string{"1.9.0"}, Digest: digestOf("1.9"), PushedAt: pushed(1)}, {Tags: []string{"2.0.0"}, Digest: digestOf("2.0"), PushedAt: pushed(2)}},
		"shop_new": {{Tags: []string{"sha-1"}, Digest: digestOf("1"), PushedAt: pushed(1)}, {Tags: []string{"sha-2"}, Digest: digestOf("2"), PushedAt: pushed(2)}},
	}}
	s := newTestScanner(testConfig(t, bare), l)

	// Onboarding: 9.9.9 ranks above every listed version and qa-sha-06c5953
	// is outside glob:sha-*, but the butler wrote neither: replaced.
	r := s.RunOnce(context.Background())[0]
	if diff := cmp.Diff([]string{"shop:ver 2.0.0", "shop:new sha-2", "shop:new " + digestOf("2")[7:]}, changedTo(r)); r.Err != nil || diff != "" {
		t.Fatalf("first cycle: err %v, changes (-want +got):\n%s", r.Err, diff)
	}
	_, butlers := headFile(t, bare, "web.yaml")

	// 2.0.0 and sha-2, which the butler wrote, are deleted from ECR: what is
	// left ranks below them (sha-1 was pushed before the butler's commit).
	l.mu.Lock()
	l.images["shop_ver"] = l.images["shop_ver"][:1]
	l.images["shop_new"] = l.images["shop_new"][:1]
	l.mu.Unlock()
	r = s.RunOnce(context.Background())[0]
	if r.Err != nil || r.Commit != "" {
		t.Fatalf("err %v, commit %q; want nothing written", r.Err, r.Commit)
	}
	short := butlers.Hash.String()[:12]
	want := []markerState{
		{"web.yaml:16", MarkerHeld, HeldDowngrade, "would downgrade from 2.0.0, which the butler set in " + short + ", to 1.9.0"},
		{"web.yaml:17", MarkerHeld, HeldDowngrade, "would downgrade from sha-2, which ECR no longer lists, to sha-1, pushed " + pushed(1).Format("2006-01-02T15:04:05Z") + ", before the butler's commit " + short + " that set sha-2 (" + butlers.Committer.When.UTC().Format("2006-01-02T15:04:05Z") + ")"},
		{"web.yaml:18", MarkerHeld, HeldByAnnotation, "held by app.lilly.com/flux.hold.held: sha-2 breaks checkout"},
		{"web.yaml:21", MarkerHeld, HeldDowngrade, "held with the tag of shop:new in web.yaml"},
	}
	if diff := cmp.Diff(want, markerStates(r)); diff != "" {
		t.Errorf("markers (-want +got):\n%s", diff)
	}
	if !strings.Contains(r.Summary(), "up to date (4 held") {
		t.Errorf("summary = %q", r.Summary())
	}

	// A person's commit to another line of the file does not date the
	// butler's value: a tag pushed after the butler's commit (and before the
	// person's) replaces the gone sha-2.
	file, _ := headFile(t, bare, "web.yaml")
	time.Sleep(1100 * time.Millisecond) // git keeps whole seconds
	l.mu.Lock()
	l.images["shop_new"] = append(l.images["shop_new"], policy.Image{Tags: []string{"sha-3"}, Digest: digestOf("3"), PushedAt: time.Now().Truncate(time.Second)})
	l.mu.Unlock()
	time.Sleep(1100 * time.Millisecond)
	personPushes(t, bare, map[string]string{"web.yaml": strings.Replace(file, "  name: web\n", "  name: web\n  labels: {team: shop}\n", 1)})
	r = s.RunOnce(context.Background())[0]
	if diff := cmp.Diff([]string{"shop:new sha-3", "shop:new " + digestOf("3")[7:]}, changedTo(r)); r.Err != nil || diff != "" {
		t.Errorf("after sha-3: err %v, changes (-want +got):\n%s", r.Err, diff)
	}

	// A newer version arrives: the guard lets it through; the hold stays.
	l.mu.Lock()
	l.images["shop_ver"] = append(l.images["shop_ver"], policy.Image{Tags: []string{"2.1.0"}, Digest: digestOf("2.1"), PushedAt: pushed(3)})
	l.mu.Unlock()
	r = s.RunOnce(context.Background())[0]
	if diff := cmp.Diff([]string{"shop:ver 2.1.0"}, changedTo(r)); r.Err != nil || diff != "" {
		t.Errorf("after 2.1.0: err %v, changes (-want +got):\n%s", r.Err, diff)
	}
	if got := markerStates(r)[2]; got.State != MarkerHeld || got.HeldBy != HeldByAnnotation {
		t.Errorf("held marker after new pushes: %+v", got)
	}

	// A person removes the hold: the policy moves on.
	file, _ = headFile(t, bare, "web.yaml")
	personPushes(t, bare, map[string]string{"web.yaml": strings.Replace(file, "    app.lilly.com/flux.hold.held: \"sha-2 breaks checkout\"\n", "", 1)})
	r = s.RunOnce(context.Background())[0]
	if len(r.Changes) != 1 || r.Changes[0].Policy != "shop:held" || !strings.HasSuffix(r.Changes[0].New, ":sha-3") {
		t.Errorf("after the hold was removed: err %v, changes %+v", r.Err, r.Changes)
	}
}

// Only the butler's own commits protect a value: a person's commit that
// carries the butler's trailer (quoted, or a butler commit they amended)
// does not, so a placeholder it names is still replaced.
func TestDowngradeGuardTrustsOnlyButlerCommits(t *testing.T) {
	for _, tt := range []struct {
		name              string
		author, committer string
	}{
		{"a person's commit", "person@example.com", "person@example.com"},
		{"a butler commit a person amended", "butler@example.com", "person@example.com"},
		{"the butler's commit", "butler@example.com", "butler@example.com"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bare := newRemote(t, map[string]string{"web.yaml": "image: 283234040926.dkr.ecr.us-east-2.amazonaws.com/shop_ver:9.9.9 # {\"$imagepolicy\": \"shop:ver\"}\n" +
				"---\n" + strings.SplitN(holdManifest, "spec:", 2)[0]})
			commitAs(t, bare, "Update shop:ver to 9.9.9\n\n"+gitwriter.SetTrailer+": shop:ver=9.9.9\n", tt.author, tt.committer)
			l := &fakeLister{calls: map[policy.ImageRef]int{}, images: map[string][]policy.Image{
				"shop_ver": {{Tags: []string{"2.0.0"}, Digest: digestOf("2.0"), PushedAt: pushed(2)}},
				"shop_new": {{Tags: []string{"sha-2"}, Digest: digestOf("2"), PushedAt: pushed(2)}},
			}}
			r := newTestScanner(testConfig(t, bare), l).RunOnce(context.Background())[0]
			held := tt.author == tt.committer && tt.author == "butler@example.com"
			if held != (r.held() == 1) || held == (len(r.Changes) == 1) {
				t.Errorf("err %v, %d held, changes %v; want held %v", r.Err, r.held(), changedTo(r), held)
			}
		})
	}
}

// commitAs makes an empty commit on bare's main with msg, authored and
// committed by the given emails.
func commitAs(t *testing.T, bare, msg, author, committer string) {
	t.Helper()
	r, err := git.PlainOpen(bare)
	if err != nil {
		t.Fatal(err)
	}
	head, err := r.Reference(plumbing.NewBranchReferenceName("main"), true)
	if err != nil {
		t.Fatal(err)
	}
	parent, err := r.CommitObject(head.Hash())
	if err != nil {
		t.Fatal(err)
	}
	when := time.Now()
	c := &object.Commit{
		Author:       object.Signature{Name: author, Email: author, When: when},
		Committer:    object.Signature{Name: committer, Email: committer, When: when},
		Message:      msg,
		TreeHash:     parent.TreeHash,
		ParentHashes: []plumbing.Hash{parent.Hash},
	}
	obj := r.Storer.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		t.Fatal(err)
	}
	h, err := r.Storer.SetEncodedObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Storer.SetReference(plumbing.NewHashReference(head.Name(), h)); err != nil {
		t.Fatal(err)
	}
}

func TestCurrentTag(t *testing.T) {
	for value, want := range map[string]string{
		"283234040926.dkr.ecr.us-east-2.amazonaws.com/a/b:v1.2.3":             "v1.2.3",
		"registry:5000/team/app:sha-1":                                        "sha-1",
		"registry:5000/team/app":                                              "",
		"283234040926.dkr.ecr.us-east-2.amazonaws.com/a:v1@sha256:0123456789": "v1",
		"example/app": "",
	} {
		if got := CurrentTag(markerFor(value)); got != want {
			t.Errorf("CurrentTag(%q) = %q, want %q", value, got, want)
		}
	}
}

func markerFor(value string) gitwriter.Marker {
	return gitwriter.Marker{Value: value, Setter: gitwriter.SetImage}
}
