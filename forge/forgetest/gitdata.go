package forgetest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// GitHub's Git Data API (blobs, trees, commits, refs), answered on the
// bare repository at GitHub.Bare, which a git server serves too: what the
// API makes is what git then fetches.

// gitData serves a Git Data API request; false when r is not one.
func (g *GitHub) gitData(w http.ResponseWriter, r *http.Request, prefix string) bool {
	path, ok := strings.CutPrefix(r.URL.Path, prefix+"/git/")
	if !ok || g.Bare == "" {
		return false
	}
	repo, err := git.PlainOpen(g.Bare)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return true
	}
	st := repo.Storer
	reply := func(status int, v any) {
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	refuse := func(status int, msg string) {
		reply(status, map[string]string{"message": msg, "documentation_url": "https://docs.github.com/rest/git"})
	}
	var in struct {
		Content, Encoding string
		BaseTree          string `json:"base_tree"`
		Tree              json.RawMessage
		Message           string
		Parents           []string
		Author            *struct{ Name, Email, Date string }
		Ref, SHA          string
		Force             bool
	}
	if r.Method != http.MethodGet {
		json.NewDecoder(r.Body).Decode(&in)
	}
	switch {
	case r.Method == http.MethodPost && path == "blobs":
		content := []byte(in.Content)
		if in.Encoding == "base64" {
			if content, err = base64.StdEncoding.DecodeString(in.Content); err != nil {
				refuse(http.StatusUnprocessableEntity, "Invalid base64")
				return true
			}
		}
		h, err := store(st, plumbing.BlobObject, content)
		if err != nil {
			refuse(http.StatusInternalServerError, err.Error())
			return true
		}
		reply(http.StatusCreated, map[string]string{"sha": h.String()})
	case r.Method == http.MethodPost && path == "trees":
		var entries []struct{ Path, Mode, Type, SHA string }
		json.Unmarshal(in.Tree, &entries)
		changes := map[string]object.TreeEntry{}
		for _, e := range entries {
			m, err := filemode.New(e.Mode)
			if err != nil || e.Type != "blob" {
				refuse(http.StatusUnprocessableEntity, "tree.mode or tree.type is invalid")
				return true
			}
			changes[e.Path] = object.TreeEntry{Mode: m, Hash: plumbing.NewHash(e.SHA)}
		}
		h, err := buildTree(repo, plumbing.NewHash(in.BaseTree), changes)
		if err != nil {
			refuse(http.StatusUnprocessableEntity, err.Error())
			return true
		}
		reply(http.StatusCreated, map[string]string{"sha": h.String()})
	case r.Method == http.MethodPost && path == "commits":
		// The stand-in does not sign.
		when := time.Now()
		var tree struct{ SHA string }
		json.Unmarshal(in.Tree, &tree.SHA) // the tree's sha, as a string
		c := &object.Commit{Message: in.Message, TreeHash: plumbing.NewHash(tree.SHA)}
		if in.Author != nil {
			at, _ := time.Parse(time.RFC3339, in.Author.Date)
			c.Author = object.Signature{Name: in.Author.Name, Email: in.Author.Email, When: at}
		}
		// "By default, committer will use the information set in author"
		// (GitHub's documentation); with neither, the token's own identity.
		c.Committer = object.Signature{Name: "GitHub", Email: "noreply@github.com", When: when}
		if in.Author != nil {
			c.Committer = object.Signature{Name: in.Author.Name, Email: in.Author.Email, When: c.Author.When}
		}
		var parents []map[string]string
		for _, p := range in.Parents {
			c.ParentHashes = append(c.ParentHashes, plumbing.NewHash(p))
			parents = append(parents, map[string]string{"sha": p})
		}
		obj := st.NewEncodedObject()
		if err := c.Encode(obj); err != nil {
			refuse(http.StatusUnprocessableEntity, err.Error())
			return true
		}
		h, err := st.SetEncodedObject(obj)
		if err != nil {
			refuse(http.StatusInternalServerError, err.Error())
			return true
		}
		g.commitsMade++
		reply(http.StatusCreated, map[string]any{"sha": h.String(), "tree": map[string]string{"sha": tree.SHA}, "parents": parents,
			"verification": map[string]any{"verified": false, "reason": "unsigned"}})
	case r.Method == http.MethodGet && strings.HasPrefix(path, "ref/heads/"):
		ref, err := repo.Reference(plumbing.NewBranchReferenceName(strings.TrimPrefix(path, "ref/heads/")), false)
		if err != nil {
			refuse(http.StatusNotFound, "Not Found")
			return true
		}
		reply(http.StatusOK, map[string]any{"ref": ref.Name().String(), "object": map[string]string{"sha": ref.Hash().String(), "type": "commit"}})
	case r.Method == http.MethodPost && path == "refs":
		name := plumbing.ReferenceName(in.Ref)
		if _, err := repo.Reference(name, false); err == nil {
			refuse(http.StatusUnprocessableEntity, "Reference already exists")
			return true
		}
		st.SetReference(plumbing.NewHashReference(name, plumbing.NewHash(in.SHA)))
		g.refUpdates++
		reply(http.StatusCreated, map[string]any{"ref": in.Ref, "object": map[string]string{"sha": in.SHA, "type": "commit"}})
	case r.Method == http.MethodPatch && strings.HasPrefix(path, "refs/heads/"):
		if g.BeforeRefUpdate != nil {
			g.BeforeRefUpdate()
		}
		name := plumbing.NewBranchReferenceName(strings.TrimPrefix(path, "refs/heads/"))
		cur, err := repo.Reference(name, false)
		if err != nil {
			refuse(http.StatusUnprocessableEntity, "Reference does not exist")
			return true
		}
		to := plumbing.NewHash(in.SHA)
		if !in.Force && !descends(repo, to, cur.Hash()) {
			g.refusedUpdates++
			refuse(http.StatusUnprocessableEntity, "Update is not a fast forward")
			return true
		}
		st.SetReference(plumbing.NewHashReference(name, to))
		g.refUpdates++
		reply(http.StatusOK, map[string]any{"ref": name.String(), "object": map[string]string{"sha": in.SHA, "type": "commit"}})
	default:
		return false
	}
	return true
}

// GitStats says how many commits the Git Data API made, and how many ref
// updates it made and refused (not a fast-forward).
func (g *GitHub) GitStats() (commits, updates, refused int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.commitsMade, g.refUpdates, g.refusedUpdates
}

// descends says whether commit to has ancestor from (or is it).
func descends(repo *git.Repository, to, from plumbing.Hash) bool {
	c, err := repo.CommitObject(to)
	if err != nil {
		return false
	}
	found := false
	object.NewCommitPreorderIter(c, nil, nil).ForEach(func(c *object.Commit) error {
		if c.Hash == from {
			found = true
			return storer.ErrStop
		}
		return nil
	})
	return found
}

func store(st storer.EncodedObjectStorer, t plumbing.ObjectType, content []byte) (plumbing.Hash, error) {
	obj := st.NewEncodedObject()
	obj.SetType(t)
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	w.Write(content)
	w.Close()
	return st.SetEncodedObject(obj)
}

// buildTree stores tree base with the blobs at the paths of changes set,
// creating folders as needed, and returns its hash.
func buildTree(repo *git.Repository, base plumbing.Hash, changes map[string]object.TreeEntry) (plumbing.Hash, error) {
	var entries []object.TreeEntry
	if !base.IsZero() {
		t, err := repo.TreeObject(base)
		if err != nil {
			return plumbing.ZeroHash, fmt.Errorf("base_tree %s: %w", base, err)
		}
		entries = append(entries, t.Entries...)
	}
	sub := map[string]map[string]object.TreeEntry{}
	for p, e := range changes {
		if dir, rest, ok := strings.Cut(p, "/"); ok {
			if sub[dir] == nil {
				sub[dir] = map[string]object.TreeEntry{}
			}
			sub[dir][rest] = e
			continue
		}
		e.Name = p
		entries = setEntry(entries, e)
	}
	for dir, ch := range sub {
		var old plumbing.Hash
		for _, e := range entries {
			if e.Name == dir && e.Mode == filemode.Dir {
				old = e.Hash
			}
		}
		h, err := buildTree(repo, old, ch)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		entries = setEntry(entries, object.TreeEntry{Name: dir, Mode: filemode.Dir, Hash: h})
	}
	sort.Slice(entries, func(i, j int) bool { return sortName(entries[i]) < sortName(entries[j]) })
	obj := repo.Storer.NewEncodedObject()
	if err := (&object.Tree{Entries: entries}).Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return repo.Storer.SetEncodedObject(obj)
}

func setEntry(entries []object.TreeEntry, e object.TreeEntry) []object.TreeEntry {
	for i := range entries {
		if entries[i].Name == e.Name {
			entries[i] = e
			return entries
		}
	}
	return append(entries, e)
}

// sortName is how git orders tree entries: a folder as if its name ended
// in "/".
func sortName(e object.TreeEntry) string {
	if e.Mode == filemode.Dir {
		return e.Name + "/"
	}
	return e.Name
}
