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
	b.Helper()
	bare := filepath.Join(b.TempDir(), "remote.git")
	if out, err := exec.Command("git", "init", "--quiet", "--bare", "--initial-branch=main", bare).CombinedOutput(); err != nil {
		b.Fatalf("git init: %v\n%s", err, out)
	}
	var in bytes.Buffer
	data := func(s string) { fmt.Fprintf(&in, "data %d\n%s\n", len(s), s) }
	manifest := strings.Replace(manifest, "shop_web:sha-old", "shop_web:sha-2", 1)
	for i := range commits {
		fmt.Fprintf(&in, "commit refs/heads/main\nmark :%d\ncommitter A Person <person@example.com> %d +0000\n", i+1, 1_700_000_000+i)
		msg := fmt.Sprintf("change %d", i)
		if i == commits-1 {
			msg = "Update shop:web\n\n" + "Imagebutler-Set: shop:web=sha-2\n"
		}
		data(msg)
		if i > 0 {
			fmt.Fprintf(&in, "from :%d\n", i)
		}
		if i == 0 {
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
