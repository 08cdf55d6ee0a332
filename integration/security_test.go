package integration

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
)

// gitIn runs git in the bare repository with input on stdin and returns
// its trimmed output.
func gitIn(t *testing.T, bare, input string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"--git-dir", bare}, args...)...)
	cmd.Stdin = strings.NewReader(input)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=Mallory", "GIT_AUTHOR_EMAIL=mallory@example.com",
		"GIT_COMMITTER_NAME=Mallory", "GIT_COMMITTER_EMAIL=mallory@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// rawTree writes a tree object of exactly the entries given ("mode name
// hash", in this order, duplicates kept), as git's own tools would refuse
// to, and returns its hash.
func rawTree(t *testing.T, bare string, entries ...string) string {
	t.Helper()
	var b bytes.Buffer
	for _, e := range entries {
		f := strings.Fields(e)
		h, err := hex.DecodeString(f[2])
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %s\x00", f[0], f[1])
		b.Write(h)
	}
	return gitIn(t, bare, b.String(), "hash-object", "-t", "tree", "--literally", "-w", "--stdin")
}

// TestCraftedTreeIsRefused: a collaborator pushes a tree holding a link x
// to .git and a folder x (a duplicate name git's tools refuse and servers
// accept by default), hoping the checkout writes the folder's hook and pack
// through the link into .git. The butler refuses the tree, says why, writes
// nothing into .git and pushes nothing; once a clean tree is pushed, the
// butler's commit is that tree plus the value change, nothing else.
func TestCraftedTreeIsRefused(t *testing.T) {
	e := setupRepo(t, "crafted", testpeers.SeedDeployment)
	bare := filepath.Join(e.git.Root, "crafted.git")
	head := gitIn(t, bare, "", "rev-parse", "main")
	apps := gitIn(t, bare, "", "rev-parse", "main:apps")
	blob := func(content string) string { return gitIn(t, bare, content, "hash-object", "-w", "--stdin") }
	hook := rawTree(t, bare, "100755 post-checkout "+blob("#!/bin/sh\ntouch /tmp/pwned\n"))
	pack := rawTree(t, bare, "100644 pack-planted.pack "+blob("PACK planted"))
	objects := rawTree(t, bare, "40000 pack "+pack)
	evil := rawTree(t, bare, "40000 hooks "+hook, "40000 objects "+objects)
	crafted := rawTree(t, bare, "40000 apps "+apps, "120000 x "+blob(".git"), "40000 x "+evil)
	commit := gitIn(t, bare, "", "commit-tree", crafted, "-p", head, "-m", "innocent change")
	gitIn(t, bare, "", "update-ref", "refs/heads/main", commit)

	stdout, stderr, code := e.once(t)
	if code != 1 || !strings.Contains(stdout+stderr, "x: the tree names an entry twice") {
		t.Errorf("once over the crafted tree: exit %d, want 1 naming the duplicate\n%s\n%s", code, stdout, stderr)
	}
	if got := gitIn(t, bare, "", "rev-parse", "main"); got != commit {
		t.Errorf("main moved to %s; the butler must push nothing over a refused tree", got)
	}
	copies, _ := filepath.Glob(filepath.Join(e.dir, "state", "*"))
	for _, c := range copies {
		for _, p := range []string{".git/hooks/post-checkout", ".git/objects/pack/pack-planted.pack"} {
			if _, err := os.Lstat(filepath.Join(c, p)); err == nil {
				t.Errorf("%s was written through the link", filepath.Join(c, p))
			}
		}
	}

	// A clean tree: the folder x alone.
	clean := rawTree(t, bare, "40000 apps "+apps, "40000 x "+evil)
	fixed := gitIn(t, bare, "", "commit-tree", clean, "-p", commit, "-m", "fix")
	gitIn(t, bare, "", "update-ref", "refs/heads/main", fixed)
	if stdout, stderr, code := e.once(t); code != 0 || !strings.Contains(stdout, "1 change(s), pushed") {
		t.Fatalf("once over the clean tree: exit %d\n%s\n%s", code, stdout, stderr)
	}
	butlers := gitIn(t, bare, "", "rev-parse", "main")
	if parent := gitIn(t, bare, "", "rev-parse", butlers+"^"); parent != fixed {
		t.Errorf("the butler's commit has parent %s, want %s", parent, fixed)
	}
	// What a clean git checkout of fixed plus the value change gives.
	work := filepath.Join(t.TempDir(), "person")
	gitOut(t, "", "clone", "--quiet", bare, work)
	gitOut(t, work, "checkout", "--quiet", fixed)
	file := filepath.Join(work, "apps", "bartender", "deployment.yaml")
	b, _ := os.ReadFile(file)
	os.WriteFile(file, []byte(strings.Replace(string(b), testpeers.SeedOldTag, testpeers.SeedNewestTag, 1)), 0o644)
	gitOut(t, work, "add", "--all")
	want := gitOut(t, work, "write-tree")
	if got := gitIn(t, bare, "", "rev-parse", butlers+"^{tree}"); got != want {
		t.Errorf("the butler's tree %s differs from a clean checkout plus the value change (%s):\n%s", got, want,
			gitIn(t, bare, "", "diff-tree", "-r", want, got))
	}
}
