package forge

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/imagebutler/imagebutler/forge/forgetest"
	"github.com/imagebutler/imagebutler/gitwriter"
)

// bareWith makes a bare repository whose main holds app.yaml with content,
// and returns it with main's commit and tree.
func bareWith(t *testing.T, content string) (string, *git.Repository, plumbing.Hash, plumbing.Hash) {
	t.Helper()
	dir := t.TempDir()
	r, err := git.PlainInit(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	blob := r.Storer.NewEncodedObject()
	blob.SetType(plumbing.BlobObject)
	w, _ := blob.Writer()
	w.Write([]byte(content))
	w.Close()
	bh, _ := r.Storer.SetEncodedObject(blob)
	tree := r.Storer.NewEncodedObject()
	(&object.Tree{Entries: []object.TreeEntry{{Name: "app.yaml", Mode: filemode.Regular, Hash: bh}}}).Encode(tree)
	th, _ := r.Storer.SetEncodedObject(tree)
	sig := object.Signature{Name: "A Person", Email: "person@example.com", When: time.Unix(1700000000, 0)}
	commit := r.Storer.NewEncodedObject()
	(&object.Commit{Author: sig, Committer: sig, Message: "init\n", TreeHash: th}).Encode(commit)
	ch, _ := r.Storer.SetEncodedObject(commit)
	r.Storer.SetReference(plumbing.NewHashReference(plumbing.NewBranchReferenceName("main"), ch))
	return dir, r, ch, th
}

// Publish refuses before it writes anything when the branch is not where
// the butler saw it, and commits nothing when GitHub's tree is not the
// butler's; otherwise the commit has the butler's parent, tree and author.
func TestGitHubCommitsPublish(t *testing.T) {
	dir, r, head, tree := bareWith(t, "a: 1\n")
	api := &forgetest.GitHub{Owner: "org", Repo: "apps", Token: "good-token", Bare: dir}
	srv := httptest.NewServer(api)
	defer srv.Close()
	c, err := NewGitHubCommits(srv.URL+"/", "org", "apps", "good-token", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	// What a local commit of "a: 2\n" makes: its tree.
	_, _, _, want := bareWith(t, "a: 2\n")
	author := object.Signature{Name: "Butler", Email: "butler@example.com", When: time.Unix(1700000100, 0)}
	p := gitwriter.Publication{Branch: "main", Old: head, Parent: head, BaseTree: tree, Tree: want, Message: "Update a\n", Author: author,
		Files: []gitwriter.PublishedFile{{Path: "app.yaml", Mode: filemode.Regular, Content: []byte("a: 2\n")}}}
	ctx := context.Background()

	moved := p
	moved.Old = plumbing.NewHash("1111111111111111111111111111111111111111")
	if _, err := c.Publish(ctx, moved); !errors.Is(err, gitwriter.ErrRejected) {
		t.Errorf("branch not at Old: %v, want ErrRejected", err)
	}
	exists := p
	exists.Old = plumbing.ZeroHash
	if _, err := c.Publish(ctx, exists); !errors.Is(err, gitwriter.ErrRejected) {
		t.Errorf("creating a branch that exists: %v, want ErrRejected", err)
	}
	wrongTree := p
	wrongTree.Tree = tree
	if _, err := c.Publish(ctx, wrongTree); !errors.Is(err, gitwriter.ErrTreeMismatch) {
		t.Errorf("another tree: %v, want ErrTreeMismatch", err)
	}
	if commits, updates, _ := api.GitStats(); commits != 0 || updates != 0 {
		t.Fatalf("%d commits, %d ref updates made by refused publications", commits, updates)
	}

	made, err := c.Publish(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := r.Reference(plumbing.NewBranchReferenceName("main"), true)
	cm, err := r.CommitObject(made)
	if err != nil || ref.Hash() != made {
		t.Fatalf("main at %s, made %s: %v", ref.Hash(), made, err)
	}
	if cm.TreeHash != want || len(cm.ParentHashes) != 1 || cm.ParentHashes[0] != head || cm.Author.Email != "butler@example.com" ||
		!cm.Author.When.Equal(author.When) || cm.Message != "Update a\n" {
		t.Errorf("commit %+v", cm)
	}
}
