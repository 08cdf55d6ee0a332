package integration

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/imagebutler/imagebutler/gitwriter"
	"github.com/imagebutler/imagebutler/scanner"
)

// syncOnce is the sync step of a cycle: open the working copy (fetch and
// hard reset) and discover.
func syncOnce(b testing.TB, e *gitEnv) *gitwriter.Tree {
	repo := e.cfg.Repositories[0]
	co, err := gitwriter.Open(context.Background(), scanner.WorkDir(e.cfg.StateDir, repo), repo, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	tree, err := gitwriter.Discover(co.Dir, repo.Paths, repo.Namespace)
	if err != nil {
		b.Fatal(err)
	}
	tree.Close()
	return tree
}

func TestNoChangeSyncTransfersNoObjects(t *testing.T) {
	needPeers(t)
	e := newGitEnv(t, "quiet")
	syncOnce(t, e) // clones
	before := e.srv.Requests("POST", "git-upload-pack")
	for range 3 {
		if tree := syncOnce(t, e); len(tree.Markers) != 1 {
			t.Fatalf("markers = %d, want 1", len(tree.Markers))
		}
	}
	if got := e.srv.Requests("POST", "git-upload-pack") - before; got != 0 {
		t.Errorf("no-change syncs made %d upload-pack requests (object transfers), want 0", got)
	}
	if got := e.srv.Requests("GET", "refs"); got < 4 {
		t.Errorf("ref advertisements = %d, want one per sync", got)
	}
}

func BenchmarkSyncNoChange(b *testing.B) {
	needPeers(b)
	e := newGitEnv(b, "bench")
	syncOnce(b, e)
	b.ReportAllocs()
	for b.Loop() {
		syncOnce(b, e)
	}
}
