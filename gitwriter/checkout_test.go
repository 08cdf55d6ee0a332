package gitwriter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/imagebutler/imagebutler/config"
)

// A kept copy's Sync checks nothing out while the remote stays where the
// copy is and nothing was written; once Apply wrote (MarkDirty), or the
// remote moved, it resets the working tree.
func TestSyncKeptCopy(t *testing.T) {
	bare := filepath.Join(t.TempDir(), "remote.git")
	if _, err := git.PlainInitWithOptions(bare, &git.PlainInitOptions{Bare: true, InitOptions: git.InitOptions{DefaultBranch: plumbing.Main}}); err != nil {
		t.Fatal(err)
	}
	seed := filepath.Join(t.TempDir(), "seed")
	r, err := git.PlainInitWithOptions(seed, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.Main}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateRemote(&gitconfig.RemoteConfig{Name: "origin", URLs: []string{bare}}); err != nil {
		t.Fatal(err)
	}
	commit := func(content string) {
		t.Helper()
		os.WriteFile(filepath.Join(seed, "app.yaml"), []byte(content), 0o644)
		wt, _ := r.Worktree()
		wt.Add("app.yaml")
		if _, err := wt.Commit("change", &git.CommitOptions{Author: &object.Signature{Name: "p", Email: "p@x", When: time.Now()}}); err != nil {
			t.Fatal(err)
		}
		if err := r.Push(&git.PushOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	commit("a: 1\n")
	repo := config.Repository{URL: bare, Branch: "main", PushBranch: "main", Paths: []string{"."}}
	dir := filepath.Join(t.TempDir(), "work")
	co, err := Open(context.Background(), dir, repo, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "app.yaml")
	read := func() string { b, _ := os.ReadFile(file); return string(b) }

	os.WriteFile(file, []byte("written\n"), 0o644) // as Apply would, unannounced
	if err := co.Refresh(context.Background(), co.repo); err != nil {
		t.Fatal(err)
	}
	if read() != "written\n" {
		t.Fatalf("a Sync with the remote unmoved checked out: %q", read())
	}
	co.MarkDirty("app.yaml")
	if err := co.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if read() != "a: 1\n" {
		t.Errorf("after MarkDirty, Sync left %q", read())
	}
	commit("a: 2\n")
	if err := co.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if read() != "a: 2\n" {
		t.Errorf("after the remote moved, Sync left %q", read())
	}

	// Someone points the copy elsewhere: Refresh refuses it (not as a
	// remote's failure), so the caller opens it afresh.
	kept, _ := git.PlainOpen(dir)
	cfg, _ := kept.Config()
	cfg.Remotes["origin"].URLs = []string{"http://127.0.0.1:1/elsewhere.git"}
	kept.SetConfig(cfg)
	if err := co.Refresh(context.Background(), co.repo); err == nil || errors.Is(err, ErrRemote) {
		t.Errorf("Refresh of a copy pointed elsewhere: %v, want a working-copy error", err)
	}
}

// A kept copy gains a pack per fetch; past MaxPacks its smaller packs are
// merged into one, and every object is still there.
func TestKeptCopyMergesPacks(t *testing.T) {
	bareDir := filepath.Join(t.TempDir(), "remote.git")
	bare, err := git.PlainInit(bareDir, true)
	if err != nil {
		t.Fatal(err)
	}
	pushTree(t, bare, map[string]entry{"apps/a.yaml": regular("a: 0\n")})
	repo := config.Repository{URL: bareDir, Branch: "main", PushBranch: "main", Paths: []string{"."}}
	co, err := Open(context.Background(), filepath.Join(t.TempDir(), "work"), repo, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	packs := func() int {
		m, _ := filepath.Glob(filepath.Join(co.Dir, ".git", "objects", "pack", "*.pack"))
		return len(m)
	}
	most := 0
	for i := range 3 * MaxPacks {
		pushTree(t, bare, map[string]entry{"apps/a.yaml": regular(fmt.Sprintf("a: %d\n", i+1)), fmt.Sprintf("notes/%d.md", i): regular("note\n")})
		if err := co.Refresh(context.Background(), co.repo); err != nil {
			t.Fatalf("fetch %d: %v", i, err)
		}
		most = max(most, packs())
	}
	if most > MaxPacks+1 {
		t.Errorf("the copy held %d packs, want at most %d", most, MaxPacks+1)
	}
	if got, _ := os.ReadFile(filepath.Join(co.Dir, "apps", "a.yaml")); string(got) != fmt.Sprintf("a: %d\n", 3*MaxPacks) {
		t.Errorf("apps/a.yaml = %q", got)
	}
	if out, err := exec.Command("git", "--git-dir", filepath.Join(co.Dir, ".git"), "fsck", "--no-dangling").CombinedOutput(); err != nil {
		t.Errorf("git fsck after merging packs: %v\n%s", err, out)
	}
}
