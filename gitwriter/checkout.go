package gitwriter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/imagebutler/imagebutler/config"
)

// ErrRejected marks a push the remote refused, such as a non-fast-forward
// update or a server hook's veto. The caller syncs, re-applies and pushes again.
var ErrRejected = errors.New("push rejected")

// Checkout is the persistent working copy of one repository.
type Checkout struct {
	// Dir is the working tree.
	Dir string
	// Head is the commit the working tree was last reset to or committed.
	Head plumbing.Hash

	repo config.Repository
	url  string // repo.URL without credentials: what go-git (and .git/config) sees
	git  *git.Repository
	auth transport.AuthMethod
	log  *slog.Logger
	// storage is git's storage of the copy, closed by Close.
	storage *filesystem.Storage
	// prefix is Dir relative to the repository's root, for OpenLocal.
	prefix string
	// synced says the working tree is Head's tree but for the files in
	// touched (written since): a Sync writes only what differs from there.
	// Without it (a copy just opened, a failed checkout) Sync compares
	// every file with the tree (checkoutOver).
	synced  bool
	touched []string
	// skipped lists the entries of the trees checked out that cannot be
	// written on this platform ("name: reason"), the first 100 (for the
	// tests); each was logged once.
	skipped []string
	// api, when set, makes the commits pushes would send (UseAPI).
	api CommitAPI
}

// Refresh re-reads the repository's credentials (a rotated token takes
// effect; repo's minted token, if any, replaces the one before) and syncs
// the copy, keeping the opened repository: a copy kept across cycles does
// not re-read its pack indexes. repo is the copy's repository.
func (c *Checkout) Refresh(ctx context.Context, repo config.Repository) error {
	if repo.URL != c.repo.URL {
		return fmt.Errorf("working copy %s: refreshed for %s, opened for another URL", c.Dir, config.Redact(repo.URL))
	}
	c.repo.Auth = repo.Auth
	auth, err := authFor(c.repo, c.log)
	if err != nil {
		return err
	}
	c.auth = auth
	if err := c.checkOrigin(c.git); err != nil {
		return fmt.Errorf("working copy %s: %w", c.Dir, err)
	}
	return c.Sync(ctx)
}

// checkOrigin says whether r's origin is the configured URL: a copy whose
// config someone changed is not fetched from elsewhere.
func (c *Checkout) checkOrigin(r *git.Repository) error {
	origin, err := r.Remote("origin")
	if err != nil {
		return err
	}
	if urls := origin.Config().URLs; len(urls) == 0 || urls[0] != c.url {
		return errors.New("its origin is not the configured URL")
	}
	return nil
}

// MarkDirty says files (relative to Dir) of the working tree were written
// to (Tree.Touched): the next Sync restores them, whatever the remote did.
func (c *Checkout) MarkDirty(files ...string) {
	for _, f := range files {
		c.touched = append(c.touched, c.inRepo(f))
	}
}

// Open returns the working copy of repo in dir, synced to the remote: the
// copy already there when it opens, points at the configured URL and
// syncs; otherwise a fresh clone, made beside it and swapped in only once it
// synced, with a warning. When the fresh clone fails too (the remote is
// unreachable, say), the old copy is left as it was; so it is when the
// fetch into it fails on the remote's side (ErrRemote).
func Open(ctx context.Context, dir string, repo config.Repository, log *slog.Logger) (*Checkout, error) {
	useKillingFileTransport()
	auth, err := authFor(repo, log)
	if err != nil {
		return nil, err
	}
	clean, _, _ := config.SplitCredentials(repo.URL)
	c := &Checkout{Dir: dir, repo: repo, url: clean, auth: auth, log: log}
	fresh := dir + ".clone"
	if _, err := os.Stat(fresh); err == nil {
		log.Warn("removing a half-made clone left by an earlier run", "dir", fresh)
		if err := os.RemoveAll(fresh); err != nil {
			return nil, fmt.Errorf("removing a half-made clone: %w", err)
		}
	}
	if _, statErr := os.Stat(dir); statErr == nil {
		reason := c.reuse(ctx)
		if reason == nil {
			return c, nil
		}
		if ctx.Err() != nil || errors.Is(reason, ErrRemote) {
			// A remote that failed to answer says nothing about the copy:
			// it stays, and the next cycle fetches into it again.
			return nil, reason
		}
		log.Warn("working copy unusable; cloning it afresh", "dir", dir, "reason", reason.Error())
	}
	if err := c.clone(ctx, fresh); err != nil {
		c.Close()
		os.RemoveAll(fresh)
		return nil, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("removing the unusable working copy: %w", err)
	}
	c.Close() // the clone's storage, opened beside
	if err := os.Rename(fresh, dir); err != nil {
		return nil, fmt.Errorf("moving the fresh clone into place: %w", err)
	}
	r, st, err := openRepository(dir)
	if err != nil {
		return nil, fmt.Errorf("opening the fresh clone: %w", err)
	}
	c.setRepository(r, st)
	if err := c.Sync(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// reuse opens and syncs the copy in c.Dir, or says why it cannot.
func (c *Checkout) reuse(ctx context.Context) error {
	r, st, err := openRepository(c.Dir)
	if err != nil {
		return err
	}
	if err := c.checkOrigin(r); err != nil {
		st.Close()
		return err
	}
	c.setRepository(r, st)
	if err := c.Sync(ctx); err != nil {
		c.Close()
		return err
	}
	return nil
}

// clone clones the repository into dir and syncs it there.
func (c *Checkout) clone(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating working copy: %w", err)
	}
	st := openStorage(dir)
	r, err := git.CloneContext(ctx, st, osfs.New(dir), &git.CloneOptions{
		URL:           c.url,
		Auth:          c.auth,
		ReferenceName: plumbing.NewBranchReferenceName(c.repo.Branch),
		SingleBranch:  true,
		Tags:          git.NoTags,
		NoCheckout:    true, // Sync checks out (worktree.go), skipping names unsafe here
	})
	if err != nil {
		st.Close()
		return fmt.Errorf("cloning %s: %w", config.Redact(c.repo.URL), scrub(err, c.auth, c.repo.URL))
	}
	c.setRepository(r, st)
	return nil
}

// Sync fetches the remote branches and makes the working tree the push
// branch's remote head (or the branch's, when the push branch does not
// exist yet): a copy that holds a known tree gets only the files that
// differ, and the ones written since (MarkDirty); any other (a copy found
// on disk at start) is compared file by file with the tree and gets what
// differs. Local changes are discarded: the working copy is a cache.
func (c *Checkout) Sync(ctx context.Context) error {
	if err := c.fetch(ctx, c.repo.Branch); err != nil {
		return err
	}
	base, err := c.git.Reference(remoteRef(c.repo.Branch), true)
	if err != nil {
		return fmt.Errorf("branch %q not found on the remote: %w", c.repo.Branch, err)
	}
	if c.repo.PushBranch != c.repo.Branch {
		if err := c.fetch(ctx, c.repo.PushBranch); err != nil && !errors.Is(err, errNoRemoteBranch) {
			return err
		}
		if push, err := c.git.Reference(remoteRef(c.repo.PushBranch), true); err == nil {
			base = push
		}
	}
	if err := c.compactPacks(); err != nil {
		c.log.Warn("merging the working copy's packs failed; it goes on with them as they are", "dir", c.Dir, "err", err.Error())
	}
	if c.synced && len(c.touched) == 0 && base.Hash() == c.Head {
		return nil // the working tree is the remote head's already
	}
	to, err := c.treeOf(base.Hash())
	if err != nil {
		return err
	}
	wasSynced := c.synced
	c.synced = false // until the checkout below is complete
	var skipped []string
	if wasSynced {
		from, err := c.treeOf(c.Head)
		if err != nil {
			return err
		}
		skipped, err = c.checkoutChanges(ctx, from, to, c.touched)
		if err != nil {
			return fmt.Errorf("checking out %s: %w", base.Hash(), err)
		}
	} else {
		if skipped, err = c.checkoutOver(ctx, to); err != nil {
			return fmt.Errorf("checking out %s: %w", base.Hash(), err)
		}
		c.skipped = nil
	}
	for i, s := range skipped {
		if i == maxSkipped {
			c.log.Warn("more files not checked out", "repo", config.Redact(c.repo.URL), "count", len(skipped)-i)
			break
		}
		c.log.Warn("file not checked out", "repo", config.Redact(c.repo.URL), "file", s)
	}
	if room := maxSkipped - len(c.skipped); room > 0 {
		c.skipped = append(c.skipped, skipped[:min(room, len(skipped))]...)
	}
	local := plumbing.NewBranchReferenceName(c.repo.PushBranch)
	if err := c.git.Storer.SetReference(plumbing.NewHashReference(local, base.Hash())); err != nil {
		return fmt.Errorf("setting %s: %w", local, err)
	}
	if err := c.git.Storer.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, local)); err != nil {
		return fmt.Errorf("setting HEAD: %w", err)
	}
	c.Head = base.Hash()
	c.touched = nil
	c.synced = true
	return nil
}

// treeOf is the tree of commit h.
func (c *Checkout) treeOf(h plumbing.Hash) (*object.Tree, error) {
	commit, err := c.git.CommitObject(h)
	if err != nil {
		return nil, fmt.Errorf("reading commit %s: %w", h, err)
	}
	t, err := commit.Tree()
	if err != nil {
		return nil, fmt.Errorf("reading the tree of %s: %w", h, err)
	}
	return t, nil
}

var errNoRemoteBranch = errors.New("no such branch on the remote")

// maxSkipped is how many entries not checked out are logged and kept in
// Checkout.Skipped: a hostile tree cannot fill the log.
const maxSkipped = 100

func remoteRef(branch string) plumbing.ReferenceName {
	return plumbing.NewRemoteReferenceName("origin", branch)
}

func (c *Checkout) fetch(ctx context.Context, branch string) error {
	spec := gitconfig.RefSpec(fmt.Sprintf("+%s:%s", plumbing.NewBranchReferenceName(branch), remoteRef(branch)))
	err := c.git.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin",
		RefSpecs:   []gitconfig.RefSpec{spec},
		Auth:       c.auth,
		Tags:       git.NoTags,
	})
	var noMatch git.NoMatchingRefSpecError
	switch {
	case err == nil, errors.Is(err, git.NoErrAlreadyUpToDate):
		return nil
	case errors.As(err, &noMatch):
		return fmt.Errorf("fetching %s: %w", branch, errNoRemoteBranch)
	}
	err = scrub(err, c.auth, c.repo.URL)
	if remoteSide(err) {
		err = fmt.Errorf("%w: %w", ErrRemote, err)
	}
	return fmt.Errorf("fetching %s from %s: %w", branch, config.Redact(c.repo.URL), err)
}

// ErrRemote marks a fetch that failed on the remote's side or on the way to
// it (an HTTP error status, a refused or dropped connection, credentials the
// server refused), as opposed to a broken working copy.
var ErrRemote = errors.New("the remote did not answer as it should")

func remoteSide(err error) bool {
	var (
		httpErr    *githttp.Err
		netErr     net.Error
		opErr      *net.OpError
		unexpected *plumbing.UnexpectedError // go-git's wrapper of an HTTP error status; no Unwrap
	)
	if errors.As(err, &unexpected) && unexpected.Err != nil && remoteSide(unexpected.Err) {
		return true
	}
	return errors.As(err, &httpErr) || errors.As(err, &netErr) || errors.As(err, &opErr) ||
		errors.Is(err, transport.ErrAuthenticationRequired) || errors.Is(err, transport.ErrAuthorizationFailed) ||
		errors.Is(err, transport.ErrRepositoryNotFound) || errors.Is(err, io.ErrUnexpectedEOF)
}

// ChangesSince returns the files (slash-separated, relative to Dir) that
// differ between commit from and Head: what Limits.DiscoverSince takes.
// Only the subtrees that differ are compared, so a commit that changed one
// file costs a few tree reads.
func (c *Checkout) ChangesSince(from plumbing.Hash) (*Changes, error) {
	a, err := c.treeOf(from)
	if err != nil {
		return nil, err
	}
	b, err := c.treeOf(c.Head)
	if err != nil {
		return nil, err
	}
	changed := &Changes{names: map[string]bool{}}
	prefix := "" // of Dir in the repository, for OpenLocal's copies
	if c.prefix != "" && c.prefix != "." {
		prefix = c.prefix + "/"
	}
	err = c.diffTrees(a, b, "", func(name string, _, _ *object.TreeEntry) error {
		if rel, ok := strings.CutPrefix(name, prefix); ok {
			changed.names[rel] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("comparing %s with %s: %w", from, c.Head, err)
	}
	return changed, nil
}

// Commit commits files (relative to Dir), as the working tree holds them,
// onto Head as author, signed by signer when it is not nil (LoadSigner).
func (c *Checkout) Commit(files []string, message string, author config.Author, signer git.Signer) (plumbing.Hash, error) {
	h, err := c.commitFiles(files, message, author, signer)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	c.Head = h
	// The files committed are Head's now; any other written file (one whose
	// write failed half-way) is still to be restored.
	c.touched = slices.DeleteFunc(c.touched, func(f string) bool { return slices.Contains(files, f) })
	return h, nil
}

// Push pushes the push branch, never forcing. A refusal by the remote is
// returned wrapping ErrRejected.
func (c *Checkout) Push(ctx context.Context) error {
	ref := plumbing.NewBranchReferenceName(c.repo.PushBranch)
	local, err := c.git.Reference(ref, true)
	if err != nil {
		return fmt.Errorf("reading %s: %w", ref, err)
	}
	// The push branch as the last fetch saw it (absent: it is created).
	var old plumbing.Hash
	if r, err := c.git.Reference(remoteRef(c.repo.PushBranch), true); err == nil {
		old = r.Hash()
	}
	if c.api != nil {
		err = c.publish(ctx, ref, old, local.Hash(), false)
	} else {
		err = c.pushCommit(ctx, ref, old, local.Hash())
	}
	switch {
	case err == nil:
		return nil
	case isRejection(err):
		return fmt.Errorf("pushing %s to %s: %w: %w", c.repo.PushBranch, config.Redact(c.repo.URL), ErrRejected, scrub(err, c.auth, c.repo.URL))
	}
	return fmt.Errorf("pushing %s to %s: %w", c.repo.PushBranch, config.Redact(c.repo.URL), scrub(err, c.auth, c.repo.URL))
}

// pushCommit points ref on the remote at commit h while it points at old,
// sending what h adds over its parent.
func (c *Checkout) pushCommit(ctx context.Context, ref plumbing.ReferenceName, old, h plumbing.Hash) error {
	if old == h {
		return nil
	}
	objs, err := c.added(h)
	if err != nil {
		return err
	}
	return c.sendPack(ctx, ref, old, h, objs)
}

// added returns the objects commit h has that its first parent does not:
// h itself, and the trees and blobs on every path where their trees
// differ (all of h's tree when it has no parent). Unchanged subtrees are
// not entered, so the cost follows the change, not the tree.
func (c *Checkout) added(h plumbing.Hash) ([]plumbing.Hash, error) {
	commit, err := c.git.CommitObject(h)
	if err != nil {
		return nil, fmt.Errorf("reading commit %s: %w", h, err)
	}
	to, err := commit.Tree()
	if err != nil {
		return nil, fmt.Errorf("reading the tree of %s: %w", h, err)
	}
	var from *object.Tree
	if commit.NumParents() > 0 {
		parent, err := commit.Parent(0)
		if err != nil {
			return nil, fmt.Errorf("reading the parent of %s: %w", h, err)
		}
		if from, err = parent.Tree(); err != nil {
			return nil, fmt.Errorf("reading the tree of %s: %w", parent.Hash, err)
		}
	}
	out := []plumbing.Hash{h}
	seen := map[plumbing.Hash]bool{}
	var walk func(a, b *object.Tree) error
	walk = func(a, b *object.Tree) error {
		if a != nil && a.Hash == b.Hash || seen[b.Hash] {
			return nil
		}
		seen[b.Hash] = true
		out = append(out, b.Hash)
		old := map[string]object.TreeEntry{}
		if a != nil {
			for _, e := range a.Entries {
				old[e.Name] = e
			}
		}
		for _, e := range b.Entries {
			was, ok := old[e.Name]
			if ok && was.Hash == e.Hash || seen[e.Hash] {
				continue
			}
			switch e.Mode {
			case filemode.Submodule:
				continue // a commit of another repository
			case filemode.Dir:
				sub, err := c.git.TreeObject(e.Hash)
				if err != nil {
					return fmt.Errorf("reading tree %s: %w", e.Hash, err)
				}
				var prev *object.Tree
				if ok && was.Mode == filemode.Dir {
					if prev, err = c.git.TreeObject(was.Hash); err != nil {
						return fmt.Errorf("reading tree %s: %w", was.Hash, err)
					}
				}
				if err := walk(prev, sub); err != nil {
					return err
				}
			default:
				seen[e.Hash] = true
				out = append(out, e.Hash)
			}
		}
		return nil
	}
	if err := walk(from, to); err != nil {
		return nil, err
	}
	return out, nil
}

func isRejection(err error) bool {
	msg := err.Error()
	return errors.Is(err, errRemoteMoved) || errors.Is(err, ErrRejected) || strings.Contains(msg, "non-fast-forward update") || strings.Contains(msg, "command error on")
}

// Diff is the unified diff commit h made to its parent.
func (c *Checkout) Diff(h plumbing.Hash) (string, error) {
	commit, err := c.git.CommitObject(h)
	if err != nil {
		return "", fmt.Errorf("reading commit %s: %w", h, err)
	}
	parent, err := commit.Parent(0)
	if err != nil {
		return "", fmt.Errorf("reading the parent of %s: %w", h, err)
	}
	patch, err := parent.Patch(commit)
	if err != nil {
		return "", fmt.Errorf("diffing %s: %w", h, err)
	}
	return patch.String(), nil
}
