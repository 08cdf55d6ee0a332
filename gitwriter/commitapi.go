package gitwriter

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// With commitMethod: api, the butler's commit is made on the remote
// through the forge's API instead of pushed: the forge writes the blobs,
// the tree and the commit (GitHub signs a commit an App makes this way,
// and shows it as verified), then moves the branch only while it points
// at the head the butler saw. The commit made locally stays the
// reference: the forge's tree must be its tree, and the forge's commit
// has its parent, message and author.

// CommitAPI makes commits on the remote through a forge's API.
type CommitAPI interface {
	// Publish makes p's commit on the remote and moves p.Branch to it,
	// returning the commit. A branch that moved from p.Old (or, with a
	// zero p.Old, that exists) is refused with an error wrapping
	// ErrRejected.
	Publish(ctx context.Context, p Publication) (plumbing.Hash, error)
}

// Publication is a commit to make through a forge's API, and the branch
// update that follows it.
type Publication struct {
	// Branch is the branch moved to the commit.
	Branch string
	// Old is the branch's head the update is conditional on; zero: the
	// branch must not exist yet.
	Old plumbing.Hash
	// Replace lets the branch move to a commit that does not descend from
	// Old (the butler's own branch in pull-request mode, which it
	// replaces with a lease); otherwise the update is a fast-forward.
	Replace bool
	// Parent is the commit's parent, BaseTree its tree.
	Parent, BaseTree plumbing.Hash
	// Tree is the tree a push would have made: the forge's must be it.
	Tree    plumbing.Hash
	Message string
	Author  object.Signature
	// Files are the files the commit changes, with their content.
	Files []PublishedFile
}

// PublishedFile is one file a Publication changes.
type PublishedFile struct {
	Path    string // slash-separated, from the repository's root
	Mode    filemode.FileMode
	Content []byte
}

// UseAPI makes the copy's pushes commits through api (nil: git pushes).
func (c *Checkout) UseAPI(api CommitAPI) { c.api = api }

// publish makes commit h through the API on ref while ref points at old
// (Replace when replace), and takes the forge's commit in: fetched, it
// becomes Head and the local branch.
func (c *Checkout) publish(ctx context.Context, ref plumbing.ReferenceName, old, h plumbing.Hash, replace bool) error {
	commit, err := c.git.CommitObject(h)
	if err != nil {
		return fmt.Errorf("reading commit %s: %w", h, err)
	}
	if len(commit.ParentHashes) != 1 {
		return fmt.Errorf("commit %s has %d parents; the API makes commits of one", h, len(commit.ParentHashes))
	}
	parent, err := commit.Parent(0)
	if err != nil {
		return fmt.Errorf("reading the parent of %s: %w", h, err)
	}
	from, err := parent.Tree()
	if err != nil {
		return err
	}
	to, err := commit.Tree()
	if err != nil {
		return err
	}
	changes, err := object.DiffTree(from, to)
	if err != nil {
		return fmt.Errorf("comparing %s with its parent: %w", h, err)
	}
	p := Publication{Branch: ref.Short(), Old: old, Replace: replace, Parent: parent.Hash, BaseTree: from.Hash, Tree: to.Hash,
		Message: commit.Message, Author: commit.Author}
	for _, ch := range changes {
		if ch.To.Name == "" || ch.From.Name == "" || ch.From.Name != ch.To.Name {
			return fmt.Errorf("commit %s adds, removes or renames %s%s; the butler changes file contents only", h, ch.From.Name, ch.To.Name)
		}
		blob, err := c.git.BlobObject(ch.To.TreeEntry.Hash)
		if err != nil {
			return fmt.Errorf("reading %s: %w", ch.To.Name, err)
		}
		r, err := blob.Reader()
		if err != nil {
			return fmt.Errorf("reading %s: %w", ch.To.Name, err)
		}
		content, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			return fmt.Errorf("reading %s: %w", ch.To.Name, err)
		}
		p.Files = append(p.Files, PublishedFile{Path: ch.To.Name, Mode: ch.To.TreeEntry.Mode, Content: content})
	}
	made, err := c.api.Publish(ctx, p)
	if err != nil {
		return err
	}
	// The forge's commit (its committer, date and signature are its own)
	// is fetched so that the copy stands where the remote does.
	if err := c.fetch(ctx, p.Branch); err != nil {
		c.synced = false
		c.log.Warn("the commit made through the API could not be fetched; the next sync takes it in", "commit", made.String(), "err", err.Error())
	} else if r, err := c.git.Reference(remoteRef(p.Branch), true); err != nil || r.Hash() != made {
		c.synced = false
	}
	if err := c.git.Storer.SetReference(plumbing.NewHashReference(ref, made)); err != nil {
		return fmt.Errorf("setting %s: %w", ref, err)
	}
	c.Head = made
	return nil
}

// ErrTreeMismatch is the refusal of a forge's tree that is not the one
// the butler made: nothing is committed.
var ErrTreeMismatch = errors.New("the forge's tree is not the butler's")
