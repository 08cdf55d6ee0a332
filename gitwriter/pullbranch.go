package gitwriter

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/imagebutler/imagebutler/config"
)

// The butler's own branch, in pull-request mode: the working tree follows
// the target branch (Sync), a commit is made on the target's head, and the
// branch is pushed to point at it, replacing the butler's earlier commit
// only with a lease on the head it saw.

// RemoteBranch fetches branch name and returns its head on the remote, or
// the zero hash when the remote has no such branch.
func (c *Checkout) RemoteBranch(ctx context.Context, name string) (plumbing.Hash, error) {
	if err := c.fetch(ctx, name); err != nil {
		if errors.Is(err, errNoRemoteBranch) {
			_ = c.git.Storer.RemoveReference(remoteRef(name))
			return plumbing.ZeroHash, nil
		}
		return plumbing.ZeroHash, err
	}
	ref, err := c.git.Reference(remoteRef(name), true)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("reading %s: %w", remoteRef(name), err)
	}
	return ref.Hash(), nil
}

// MaxForeignLook is how many commits of the butler's branch Foreign looks
// at.
const MaxForeignLook = 200

// Foreign returns the commits reachable from head but not from Head (the
// target branch) that are not the butler's (ByButler: author and committer
// both butlerEmail; a butler commit a person amended is theirs), newest
// first, looking at
// no more than limit of them; ahead is how many commits head has that Head
// has not. The walk from head stops at the merge bases of the two, however
// far the target moved since.
func (c *Checkout) Foreign(head plumbing.Hash, butlerEmail string, limit int) (foreign []*object.Commit, ahead int, err error) {
	base, err := c.git.CommitObject(c.Head)
	if err != nil {
		return nil, 0, fmt.Errorf("reading commit %s: %w", c.Head, err)
	}
	tip, err := c.git.CommitObject(head)
	if err != nil {
		return nil, 0, fmt.Errorf("reading commit %s: %w", head, err)
	}
	bases, err := tip.MergeBase(base)
	if err != nil {
		return nil, 0, fmt.Errorf("finding where %s and %s part: %w", head, c.Head, err)
	}
	stop := map[plumbing.Hash]bool{}
	for _, b := range bases {
		stop[b.Hash] = true
	}
	iter := object.NewCommitPreorderIter(tip, stop, nil)
	defer iter.Close()
	for range limit {
		cm, err := iter.Next()
		if err != nil {
			break
		}
		ahead++
		if !ByButler(cm, butlerEmail) {
			foreign = append(foreign, cm)
		}
	}
	return foreign, ahead, nil
}

// Proposes reports whether commit head already proposes commit h: it sits
// on the same parent and holds the same tree.
func (c *Checkout) Proposes(head, h plumbing.Hash) bool {
	a, err := c.git.CommitObject(head)
	if err != nil {
		return false
	}
	b, err := c.git.CommitObject(h)
	if err != nil {
		return false
	}
	return a.TreeHash == b.TreeHash && len(a.ParentHashes) == 1 && len(b.ParentHashes) == 1 && a.ParentHashes[0] == b.ParentHashes[0]
}

// PushTo points branch name on the remote at commit h. With a zero lease
// the branch must not exist there (a plain push that creates it);
// otherwise it is replaced only while it still points at lease
// (force-with-lease): a push someone made in between is never overwritten.
func (c *Checkout) PushTo(ctx context.Context, name string, h, lease plumbing.Hash) error {
	ref := plumbing.NewBranchReferenceName(name)
	if err := c.git.Storer.SetReference(plumbing.NewHashReference(ref, h)); err != nil {
		return fmt.Errorf("setting %s: %w", ref, err)
	}
	if c.api != nil {
		return c.pushed(name, c.publish(ctx, ref, lease, h, true))
	}
	return c.pushed(name, c.pushCommit(ctx, ref, lease, h))
}

// DeleteBranch deletes branch name on the remote while it still points at
// lease: a branch someone pushed to since is never deleted.
func (c *Checkout) DeleteBranch(ctx context.Context, name string, lease plumbing.Hash) error {
	return c.pushed(name, c.sendPack(ctx, plumbing.NewBranchReferenceName(name), lease, plumbing.ZeroHash, nil))
}

// pushed words the error of a push of branch.
func (c *Checkout) pushed(branch string, err error) error {
	switch {
	case err == nil:
		return nil
	case isRejection(err):
		return fmt.Errorf("pushing %s to %s: %w: %w", branch, config.Redact(c.repo.URL), ErrRejected, scrub(err, c.auth, c.repo.URL))
	}
	return fmt.Errorf("pushing %s to %s: %w", branch, config.Redact(c.repo.URL), scrub(err, c.auth, c.repo.URL))
}
