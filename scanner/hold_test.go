package scanner

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagebutler/imagebutler/gitwriter"
	"github.com/imagebutler/imagebutler/policy"
)

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
        - image: 283234040926.dkr.ecr.us-east-2.amazonaws.com/shop_ver:2.0.0 # {"$imagepolicy": "shop:ver"}
        - image: 283234040926.dkr.ecr.us-east-2.amazonaws.com/shop_new:sha-gone # {"$imagepolicy": "shop:new"}
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

// The butler never downgrades by accident, and a hold stops a policy.
func TestHoldsAndDowngradeGuard(t *testing.T) {
	bare := newRemote(t, map[string]string{"web.yaml": holdManifest})
	before := time.Now().Add(-time.Hour).Truncate(time.Second)
	l := &fakeLister{calls: map[policy.ImageRef]int{}, images: map[string][]policy.Image{
		// 2.0.0 was deleted; 1.x is all ECR has: 1.9.0 would be a downgrade.
		"shop_ver": {{Tags: []string{"1.9.0"}, Digest: digestOf("1.9"), PushedAt: pushed(1)}},
		// sha-gone is gone; sha-2 was pushed before the commit that set sha-gone.
		"shop_new": {{Tags: []string{"sha-1"}, Digest: digestOf("1"), PushedAt: before}, {Tags: []string{"sha-2"}, Digest: digestOf("2"), PushedAt: before.Add(time.Second)}},
	}}
	s := newTestScanner(testConfig(t, bare), l)
	r := s.RunOnce(context.Background())[0]
	if r.Err != nil || r.Commit != "" {
		t.Fatalf("err %v, commit %q; want nothing written", r.Err, r.Commit)
	}
	want := []markerState{
		{"web.yaml:16", MarkerHeld, HeldDowngrade, "would downgrade from 2.0.0 to 1.9.0"},
		{"web.yaml:17", MarkerHeld, HeldDowngrade, "would downgrade from sha-gone, which ECR no longer lists, to sha-2, pushed " + before.Add(time.Second).UTC().Format("2006-01-02T15:04:05Z") + ", before the commit that set sha-gone"},
		{"web.yaml:18", MarkerHeld, HeldByAnnotation, "held by app.lilly.com/flux.hold.held: sha-2 breaks checkout"},
		{"web.yaml:21", MarkerHeld, HeldDowngrade, "held with the tag of shop:new in web.yaml"},
	}
	got := markerStates(r)
	for i := range got {
		if i == 1 { // the commit time is the fixture's: compare up to it
			got[i].Reason, _, _ = strings.Cut(got[i].Reason, " (")
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("markers (-want +got):\n%s", diff)
	}
	if !strings.Contains(r.Summary(), "up to date (4 held") {
		t.Errorf("summary = %q", r.Summary())
	}

	// Newer images arrive: the guard lets them through; the hold stays.
	l.mu.Lock()
	l.images["shop_ver"] = append(l.images["shop_ver"], policy.Image{Tags: []string{"2.1.0"}, Digest: digestOf("2.1"), PushedAt: pushed(2)})
	l.images["shop_new"] = append(l.images["shop_new"], policy.Image{Tags: []string{"sha-3"}, Digest: digestOf("3"), PushedAt: pushed(3)})
	l.mu.Unlock()
	r = s.RunOnce(context.Background())[0]
	var changed []string
	for _, c := range r.Changes {
		changed = append(changed, c.Policy+" "+c.New[strings.LastIndexAny(c.New, ":/")+1:])
	}
	if diff := cmp.Diff([]string{"shop:ver 2.1.0", "shop:new sha-3", "shop:new " + digestOf("3")[7:]}, changed); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	if got := markerStates(r)[2]; got.State != MarkerHeld || got.HeldBy != HeldByAnnotation {
		t.Errorf("held marker after new pushes: %+v", got)
	}

	// A person removes the hold: the policy moves on.
	file, _ := headFile(t, bare, "web.yaml")
	personPushes(t, bare, map[string]string{"web.yaml": strings.Replace(file, "    app.lilly.com/flux.hold.held: \"sha-2 breaks checkout\"\n", "", 1)})
	r = s.RunOnce(context.Background())[0]
	if len(r.Changes) != 1 || r.Changes[0].Policy != "shop:held" || !strings.HasSuffix(r.Changes[0].New, ":sha-3") {
		t.Errorf("after the hold was removed: err %v, changes %+v", r.Err, r.Changes)
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
