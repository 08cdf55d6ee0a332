package scanner

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imagebutler/imagebutler/policy"
)

// historyRemote is a bare repository whose main has commits commits: the
// seed manifest first, then a person's commits to another file, and last
// the butler's commit that set the marker (with its trailer).
func historyRemote(b *testing.B, commits int) string {
	return historyRemoteWith(b, commits, false)
}

// historyRemoteWith is historyRemote; with reverted, a person's last commit
// changes the marker from the butler's sha-3 back to sha-2, which the
// butler then holds every cycle.
func historyRemoteWith(b *testing.B, commits int, reverted bool) string {
	b.Helper()
	bare := filepath.Join(b.TempDir(), "remote.git")
	if out, err := exec.Command("git", "init", "--quiet", "--bare", "--initial-branch=main", bare).CombinedOutput(); err != nil {
		b.Fatalf("git init: %v\n%s", err, out)
	}
	var in bytes.Buffer
	data := func(s string) { fmt.Fprintf(&in, "data %d\n%s\n", len(s), s) }
	manifest := strings.Replace(manifest, "shop_web:sha-old", "shop_web:sha-2", 1)
	for i := range commits {
		who, msg := "A Person <person@example.com>", fmt.Sprintf("change %d", i)
		switch {
		case reverted && i == commits-2:
			who, msg = "Butler <butler@example.com>", "Update shop:web\n\n"+"Imagebutler-Set: shop:web=sha-3\n"
		case !reverted && i == commits-1:
			who, msg = "Butler <butler@example.com>", "Update shop:web\n\n"+"Imagebutler-Set: shop:web=sha-2\n"
		}
		fmt.Fprintf(&in, "commit refs/heads/main\nmark :%d\ncommitter %s %d +0000\n", i+1, who, 1_700_000_000+i)
		data(msg)
		if i > 0 {
			fmt.Fprintf(&in, "from :%d\n", i)
		}
		switch {
		case i == 0:
			in.WriteString("M 100644 inline web.yaml\n")
			data(manifest)
		case reverted && i == commits-2:
			in.WriteString("M 100644 inline web.yaml\n")
			data(strings.Replace(manifest, "shop_web:sha-2", "shop_web:sha-3", 1))
		case reverted && i == commits-1:
			in.WriteString("M 100644 inline web.yaml\n")
			data(manifest)
		}
		in.WriteString("M 100644 inline notes.txt\n")
		data(fmt.Sprint("note ", i))
	}
	cmd := exec.Command("git", "fast-import", "--quiet")
	cmd.Dir, cmd.Stdin = bare, &in
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("git fast-import: %v\n%s", err, out)
	}
	return bare
}

// BenchmarkHeldCycleHistory is a cycle over a 10,000-commit history in
// which a person's revert keeps a marker held: the history is read every
// cycle (up to MaxHistory commits for a policy the butler never wrote).
func BenchmarkHeldCycleHistory(b *testing.B) {
	bare := historyRemoteWith(b, 10_000, true)
	l := &fakeLister{calls: map[policy.ImageRef]int{}, images: map[string][]policy.Image{
		"shop_web": {{Tags: []string{"sha-2"}, Digest: digestOf("2"), PushedAt: pushed(2)}, {Tags: []string{"sha-3"}, Digest: digestOf("3"), PushedAt: pushed(3)}},
		"shop_api": {{Tags: []string{"sha-old"}, Digest: digestOf("old"), PushedAt: pushed(1)}},
	}}
	s := newTestScanner(testConfig(b, bare), l)
	if r := s.RunOnce(context.Background())[0]; r.Err != nil || r.Commit != "" || r.held() != 1 {
		b.Fatalf("first cycle: err %v, commit %q, %d held", r.Err, r.Commit, r.held())
	}
	b.ResetTimer()
	for b.Loop() {
		if r := s.RunOnce(context.Background())[0]; r.Err != nil || r.held() != 1 {
			b.Fatalf("err %v, %d held", r.Err, r.held())
		}
	}
}

// BenchmarkNoChangeCycleHistory is a cycle with nothing to write over a
// repository with a short and a long history: the rollback rules read no
// history when no marker would change.
func BenchmarkNoChangeCycleHistory(b *testing.B) {
	for _, commits := range []int{1, 10_000} {
		b.Run(fmt.Sprintf("commits=%d", commits), func(b *testing.B) {
			bare := historyRemote(b, commits)
			l := &fakeLister{calls: map[policy.ImageRef]int{}, images: map[string][]policy.Image{
				"shop_web": {{Tags: []string{"sha-2"}, Digest: digestOf("2"), PushedAt: pushed(2)}},
				"shop_api": {{Tags: []string{"sha-old"}, Digest: digestOf("old"), PushedAt: pushed(1)}},
			}}
			s := newTestScanner(testConfig(b, bare), l)
			if r := s.RunOnce(context.Background())[0]; r.Err != nil || r.Commit != "" {
				b.Fatalf("first cycle: err %v, commit %q", r.Err, r.Commit)
			}
			b.ResetTimer()
			for b.Loop() {
				if r := s.RunOnce(context.Background())[0]; r.Err != nil || r.Commit != "" {
					b.Fatalf("err %v, commit %q", r.Err, r.Commit)
				}
			}
		})
	}
}
