package gitwriter

import (
	"os"
	"os/exec"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// gitAs runs git in dir as who (author and committer "name <email>" pairs).
func gitAs(t *testing.T, dir, authorEmail, committerEmail string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL="+authorEmail, "GIT_COMMITTER_NAME=c", "GIT_COMMITTER_EMAIL="+committerEmail)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// LastSets reads only the butler's commits (author and committer), only
// their closing trailer block, and follows merged branches.
func TestLastSets(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("needs git")
	}
	const butler, person = "butler@example.com", "person@example.com"
	dir := t.TempDir()
	commit := func(author, committer, msg string) {
		t.Helper()
		gitAs(t, dir, author, committer, "commit", "--quiet", "--allow-empty", "-m", msg)
	}
	gitAs(t, dir, person, person, "init", "--quiet", "--initial-branch=main")
	commit(person, person, "manifests")
	commit(butler, butler, "Update\n\nImagebutler-Set: ns:a=1\nImagebutler-Set: ns:b=1\nImagebutler-Set: ns:c=1")
	// The butler's pull request branch, merged with a merge commit.
	gitAs(t, dir, person, person, "checkout", "--quiet", "-b", "imagebutler/main")
	commit(butler, butler, "Update ns:a\n\nImagebutler-Set: ns:a=2")
	gitAs(t, dir, person, person, "checkout", "--quiet", "main")
	commit(person, person, "unrelated")
	gitAs(t, dir, person, person, "merge", "--quiet", "--no-ff", "-m", "Merge pull request #1", "imagebutler/main")
	// A person quotes a trailer, in their last paragraph too.
	commit(person, person, "Imagebutler-Set: ns:b=99\n\nImagebutler-Set: ns:b=99")
	// A butler commit a person amended: the committer is the person.
	commit(butler, person, "Update ns:c\n\nImagebutler-Set: ns:c=99")
	// The butler's trailer line quoted above its trailer block.
	commit(butler, butler, "Update ns:d\n\nImagebutler-Set: ns:b=98\n\nImagebutler-Set: ns:d=3")

	co, err := OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	sets, err := co.LastSets([]string{"ns:a", "ns:b", "ns:c", "ns:d", "ns:never"}, butler, 100)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for id, s := range sets {
		got[id] = s.Value
	}
	want := map[string]string{"ns:a": "2", "ns:b": "1", "ns:c": "1", "ns:d": "3"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LastSets (-want +got):\n%s", diff)
	}
	// Within a limit of one commit, only the newest is read.
	if sets, err := co.LastSets([]string{"ns:a"}, butler, 1); err != nil || len(sets) != 0 {
		t.Errorf("limit 1: %v, %v", sets, err)
	}
}
