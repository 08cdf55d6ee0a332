package gitwriter

import (
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// SetTrailer is the commit trailer the butler records each value it sets
// with, one per policy: "Imagebutler-Set: <policy-id>=<tag>". Reading them
// back tells the butler's writes from a person's, with git as the record.
const SetTrailer = "Imagebutler-Set"

// WithTrailers appends one SetTrailer per policy of set (policy id → tag),
// sorted, as a trailer block at the end of msg.
func WithTrailers(msg string, set map[string]string) string {
	if len(set) == 0 {
		return msg
	}
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var b strings.Builder
	b.WriteString(strings.TrimRight(msg, "\n"))
	b.WriteString("\n\n")
	for _, id := range ids {
		fmt.Fprintf(&b, "%s: %s=%s\n", SetTrailer, id, set[id])
	}
	return b.String()
}

// Set is a value the butler set, as its commit's trailer records it.
type Set struct {
	Value  string // the tag
	Commit plumbing.Hash
	When   time.Time // when that commit was made
}

// LastSets returns, for each of ids, the value the butler's most recent
// commit set, walking first parents back from Head through at most limit
// commits; it stops early once every id is found. At a merge, the tips of
// the merged branches are read too, right after the merge itself: a pull
// request of the butler's merged with a merge commit counts. Ids the walk
// does not find are absent.
//
// A commit is the butler's only when its author and its committer are both
// butlerEmail, and only its closing trailer block is read: a person's
// commit that quotes a trailer, or a butler commit amended by a person
// (the committer changes), sets nothing.
func (c *Checkout) LastSets(ids []string, butlerEmail string, limit int) (map[string]Set, error) {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	out := map[string]Set{}
	read := func(commit *object.Commit) {
		if !ByButler(commit, butlerEmail) {
			return
		}
		for id, value := range trailerSets(commit.Message) {
			if _, seen := out[id]; want[id] && !seen {
				out[id] = Set{Value: value, Commit: commit.Hash, When: commit.Committer.When}
			}
		}
	}
	commit, err := c.git.CommitObject(c.Head)
	if err != nil {
		return nil, fmt.Errorf("reading commit %s: %w", c.Head, err)
	}
	for range limit {
		read(commit)
		for _, h := range commit.ParentHashes[min(1, len(commit.ParentHashes)):] {
			merged, err := c.git.CommitObject(h)
			if err != nil {
				return nil, fmt.Errorf("reading history: %w", err)
			}
			read(merged)
		}
		if len(out) == len(want) || commit.NumParents() == 0 {
			break
		}
		if commit, err = commit.Parent(0); err != nil {
			return nil, fmt.Errorf("reading history: %w", err)
		}
	}
	return out, nil
}

// ByButler reports whether commit was made by the butler whose commits
// carry butlerEmail: as author and as committer.
func ByButler(commit *object.Commit, butlerEmail string) bool {
	return butlerEmail != "" && strings.EqualFold(commit.Author.Email, butlerEmail) && strings.EqualFold(commit.Committer.Email, butlerEmail)
}

// trailerSets reads the SetTrailer lines of msg's last paragraph, where
// WithTrailers puts them: policy id → tag.
func trailerSets(msg string) map[string]string {
	msg = strings.TrimRight(msg, "\n")
	if i := strings.LastIndex(msg, "\n\n"); i >= 0 {
		msg = msg[i+2:]
	}
	var out map[string]string
	for _, line := range strings.Split(msg, "\n") {
		rest, ok := strings.CutPrefix(line, SetTrailer+": ")
		if !ok {
			continue
		}
		id, value, ok := strings.Cut(strings.TrimSpace(rest), "=")
		if !ok || id == "" || value == "" {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[id] = value
	}
	return out
}

// ChangedBy returns the newest commit after since (walking first parents
// back from Head, at most limit commits) that changed file and whose author
// is not the butler's (ByButler): the person's commit that set what file
// holds now.
func (c *Checkout) ChangedBy(file string, since plumbing.Hash, butlerEmail string, limit int) (*object.Commit, error) {
	commit, err := c.git.CommitObject(c.Head)
	if err != nil {
		return nil, fmt.Errorf("reading commit %s: %w", c.Head, err)
	}
	for range limit {
		if commit.Hash == since || commit.NumParents() == 0 {
			return nil, nil
		}
		parent, err := commit.Parent(0)
		if err != nil {
			return nil, fmt.Errorf("reading history: %w", err)
		}
		if !ByButler(commit, butlerEmail) && blobOf(commit, c.inRepo(file)) != blobOf(parent, c.inRepo(file)) {
			return commit, nil
		}
		commit = parent
	}
	return nil, nil
}

func blobOf(c *object.Commit, file string) plumbing.Hash {
	f, err := c.File(file)
	if err != nil {
		return plumbing.ZeroHash
	}
	return f.Hash
}

// FileAt returns file as commit holds it, or nil when it does not.
func (c *Checkout) FileAt(commit plumbing.Hash, file string) ([]byte, error) {
	cm, err := c.git.CommitObject(commit)
	if err != nil {
		return nil, fmt.Errorf("reading commit %s: %w", commit, err)
	}
	f, err := cm.File(c.inRepo(file))
	if err != nil {
		return nil, nil
	}
	text, err := f.Contents()
	if err != nil {
		return nil, fmt.Errorf("reading %s at %s: %w", file, commit, err)
	}
	return []byte(text), nil
}

// OpenLocal opens, to read its history, the git repository that holds dir
// (dir or a folder above it), at its HEAD, without fetching or changing
// anything. File names given to its history methods are relative to dir.
func OpenLocal(dir string) (*Checkout, error) {
	r, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true})
	if err != nil {
		return nil, err
	}
	wt, err := r.Worktree()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	root := wt.Filesystem.Root()
	if real, err := filepath.EvalSymlinks(root); err == nil {
		root = real
	}
	prefix, err := filepath.Rel(root, abs)
	if err != nil {
		return nil, err
	}
	head, err := r.Head()
	if err != nil {
		return nil, err
	}
	return &Checkout{Dir: dir, Head: head.Hash(), git: r, prefix: filepath.ToSlash(prefix)}, nil
}

// inRepo is file (relative to Dir) relative to the repository's root.
func (c *Checkout) inRepo(file string) string {
	if c.prefix == "" || c.prefix == "." {
		return file
	}
	return path.Join(c.prefix, file)
}
