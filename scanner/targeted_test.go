package scanner

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/imagebutler/imagebutler/policy"
)

func TestMerge(t *testing.T) {
	img := func(sec int, digest string, tags ...string) policy.Image {
		return policy.Image{Tags: tags, Digest: "sha256:" + strings.Repeat(digest, 64), PushedAt: pushed(sec)}
	}
	listing := []policy.Image{img(1, "a", "sha-1"), img(2, "b", "sha-2", "latest"), img(3, "c", "sha-3")}
	tests := map[string]struct {
		images []policy.Image
		want   []policy.Image
	}{
		"nothing":         {nil, listing},
		"new at the end":  {[]policy.Image{img(4, "d", "sha-4")}, append(listing[:3:3], img(4, "d", "sha-4"))},
		"new in between":  {[]policy.Image{img(2, "bb", "sha-2b")}, []policy.Image{listing[0], listing[1], img(2, "bb", "sha-2b"), listing[2]}},
		"tag moves":       {[]policy.Image{img(4, "d", "sha-4", "latest")}, []policy.Image{listing[0], img(2, "b", "sha-2"), listing[2], img(4, "d", "sha-4", "latest")}},
		"last tag moves":  {[]policy.Image{img(4, "d", "sha-1")}, []policy.Image{listing[1], listing[2], img(4, "d", "sha-1")}},
		"retagged":        {[]policy.Image{img(1, "a", "sha-1", "stable")}, []policy.Image{img(1, "a", "sha-1", "stable"), listing[1], listing[2]}},
		"twice the same":  {[]policy.Image{img(3, "c", "sha-3")}, listing},
		"several at once": {[]policy.Image{img(5, "e", "sha-5"), img(4, "d", "sha-4")}, append(listing[:3:3], img(4, "d", "sha-4"), img(5, "e", "sha-5"))},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			before := cloneImages(listing)
			got := Merge(listing, tc.images)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Merge (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, listing); diff != "" {
				t.Errorf("Merge changed its input (-before +after):\n%s", diff)
			}
		})
	}
}

func cloneImages(in []policy.Image) []policy.Image {
	out := make([]policy.Image, len(in))
	for i, img := range in {
		img.Tags = append([]string(nil), img.Tags...)
		out[i] = img
	}
	return out
}

// describingLister is a fakeLister that also describes pushed images, as
// ECR's DescribeImages with imageIds does, and counts both calls.
type describingLister struct {
	*fakeLister
	mu        sync.Mutex
	describes map[policy.ImageRef]int
}

func (d *describingLister) Describe(_ context.Context, ref policy.ImageRef, ids []ImageID) ([]policy.Image, error) {
	d.mu.Lock()
	d.describes[ref]++
	d.mu.Unlock()
	d.fakeLister.mu.Lock()
	defer d.fakeLister.mu.Unlock()
	var out []policy.Image
	for _, img := range d.images[ref.Repository] {
		for _, id := range ids {
			for _, tag := range img.Tags {
				if tag == id.Tag {
					out = append(out, img)
				}
			}
		}
	}
	return out, nil
}

// A targeted pass after a push describes the pushed image once per ECR
// repository, however many git repositories use it, and lists nothing.
func TestPassMergesPushWithoutListing(t *testing.T) {
	a := newRemote(t, map[string]string{"web.yaml": manifest})
	b := newRemote(t, map[string]string{"web.yaml": manifest})
	fl := &fakeLister{calls: map[policy.ImageRef]int{}, images: map[string][]policy.Image{
		"shop_web": {{Tags: []string{"sha-1"}, PushedAt: pushed(1), Digest: "sha256:" + strings.Repeat("1", 64)}},
		"shop_api": {{Tags: []string{"sha-9"}, PushedAt: pushed(1), Digest: "sha256:" + strings.Repeat("9", 64)}},
	}}
	l := &describingLister{fakeLister: fl, describes: map[policy.ImageRef]int{}}
	cfg := testConfig(t, a, b)
	s := New(cfg, l, newTestScanner(cfg, l).log, WithEvents())
	for _, r := range s.RunOnce(context.Background()) {
		if r.Err != nil || r.Commit == "" {
			t.Fatalf("first cycle: %s: err %v, commit %q", r.Repository, r.Err, r.Commit)
		}
	}
	web := policy.ImageRef{Account: "283234040926", Region: "us-east-2", Repository: "shop_web"}
	users := s.Users(web)
	if len(users) != 2 {
		t.Fatalf("Users(%s) = %v, want both repositories", web, users)
	}

	fl.mu.Lock()
	fl.images["shop_web"] = append(fl.images["shop_web"], policy.Image{Tags: []string{"sha-2"}, PushedAt: pushed(2), Digest: "sha256:" + strings.Repeat("2", 64)})
	fl.mu.Unlock()
	push := Push{Ref: web, Tag: "sha-2", Digest: "sha256:" + strings.Repeat("2", 64)}
	for _, name := range users {
		r, err := s.Pass(context.Background(), name, []Push{push})
		if err != nil || r.Err != nil || r.Commit == "" || len(r.Changes) != 1 || r.Changes[0].New != "283234040926.dkr.ecr.us-east-2.amazonaws.com/shop_web:sha-2" {
			t.Errorf("pass over %s: err %v / %v, commit %q, changes %+v", name, err, r.Err, r.Commit, r.Changes)
		}
	}
	if n := l.describes[web]; n != 1 {
		t.Errorf("described %s %d times, want once", web, n)
	}
	for ref, n := range fl.calls {
		if n != 1 {
			t.Errorf("%s listed %d times, want once (by the cycle only)", ref, n)
		}
	}
	st := s.Status()
	if len(st.Repositories) != 2 || st.Repositories[0].Commit == "" || st.Repositories[0].Changes[0].New != "283234040926.dkr.ecr.us-east-2.amazonaws.com/shop_web:sha-2" {
		t.Errorf("status after the pass: %+v", st.Repositories)
	}
	if _, err := s.Pass(context.Background(), "nope", nil); err == nil {
		t.Error("Pass over an unknown repository succeeded")
	}
}

// A working copy and its discovery are kept across cycles: a cycle whose
// remote did not move changes nothing, and one after a person's push sees
// the pushed files (the kept discovery is not reused for another head).
func TestKeptCopyFollowsRemote(t *testing.T) {
	bare := newRemote(t, map[string]string{"web.yaml": manifest})
	l := &fakeLister{calls: map[policy.ImageRef]int{}, images: map[string][]policy.Image{
		"shop_web": {{Tags: []string{"sha-1"}, PushedAt: pushed(1)}},
		"shop_api": {{Tags: []string{"sha-9"}, PushedAt: pushed(1)}},
	}}
	s := newTestScanner(testConfig(t, bare), l)
	cycle := func() RepoResult {
		t.Helper()
		r := s.RunOnce(context.Background())[0]
		if r.Err != nil {
			t.Fatalf("cycle: %v", r.Err)
		}
		return r
	}
	if r := cycle(); r.Commit == "" || len(r.Changes) != 2 {
		t.Fatalf("first cycle: commit %q, %d changes", r.Commit, len(r.Changes))
	}
	if r := cycle(); r.Commit != "" || len(r.Markers) != 2 {
		t.Fatalf("second cycle: commit %q, %d markers", r.Commit, len(r.Markers))
	}
	personPushes(t, bare, map[string]string{"more.yaml": "image: 283234040926.dkr.ecr.us-east-2.amazonaws.com/shop_web:sha-old # {\"$imagepolicy\": \"shop:web\"}\n"})
	r := cycle()
	if r.Commit == "" || len(r.Changes) != 1 || r.Changes[0].File != "more.yaml" || len(r.Markers) != 3 {
		t.Fatalf("cycle after the push: commit %q, changes %+v, %d markers", r.Commit, r.Changes, len(r.Markers))
	}
	got, _ := headFile(t, bare, "more.yaml")
	if !strings.Contains(got, "shop_web:sha-1 ") {
		t.Errorf("more.yaml = %q", got)
	}
	if r := cycle(); r.Commit != "" || len(r.Markers) != 3 {
		t.Errorf("cycle after that: commit %q, %d markers", r.Commit, len(r.Markers))
	}
}
