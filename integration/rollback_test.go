package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
)

var rollbackRuns atomic.Int32

// rollbackEnv is a git repository holding the seed Deployment over an ECR
// repository of its own in moto, which starts empty.
type rollbackEnv struct {
	*env
	t    *testing.T
	repo string
	ecr  *ecr.Client
}

func newRollbackEnv(t *testing.T, name string) *rollbackEnv {
	t.Helper()
	needPeers(t)
	r := &rollbackEnv{t: t, repo: fmt.Sprintf("lrl_falcon_%s_%d", name, rollbackRuns.Add(1)), ecr: moto.ECR(testpeers.SeedRegion)}
	if err := testpeers.CreateRepository(t.Context(), r.ecr, testpeers.SeedAccount, r.repo); err != nil {
		t.Fatal(err)
	}
	r.env = setupRepo(t, name, strings.ReplaceAll(testpeers.SeedDeployment, testpeers.SeedRepository, r.repo))
	return r
}

// push pushes tag a second after whatever came before (moto and git keep
// whole seconds).
func (r *rollbackEnv) push(tag string) {
	r.t.Helper()
	time.Sleep(1100 * time.Millisecond)
	if _, err := testpeers.PushImage(r.t.Context(), r.ecr, testpeers.SeedAccount, r.repo, tag); err != nil {
		r.t.Fatal(err)
	}
}

// run runs once, which must succeed and print wantSummary; it returns the
// log.
func (r *rollbackEnv) run(wantSummary string) string {
	r.t.Helper()
	stdout, stderr, code := r.once(r.t)
	if code != 0 || !strings.Contains(stdout, wantSummary) {
		r.t.Fatalf("once: exit %d, stdout %q, want %q\nstderr:\n%s", code, stdout, wantSummary, stderr)
	}
	return stderr
}

// marker is the tag the remote's marker holds.
func (r *rollbackEnv) marker() string {
	file, _ := os.ReadFile(filepath.Join(r.clone(r.t), "apps/bartender/deployment.yaml"))
	for _, line := range strings.Split(string(file), "\n") {
		if strings.Contains(line, "$imagepolicy") {
			v, _, _ := strings.Cut(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "image:")), " ")
			return v[strings.LastIndex(v, ":")+1:]
		}
	}
	return ""
}

// TestDeletedTagIsNotDowngraded runs `once` against moto: when the current
// tag is deleted from ECR, the butler keeps it (the older tag left was
// pushed before the commit that set it) and says so; a restart with an
// empty stateDir decides the same; a newer push moves the marker on.
func TestDeletedTagIsNotDowngraded(t *testing.T) {
	r := newRollbackEnv(t, "rollback")
	once := func(wantTag, wantSummary string) {
		t.Helper()
		r.run(wantSummary)
		if got := r.marker(); got != wantTag {
			t.Fatalf("marker = %s, want %s", got, wantTag)
		}
	}
	r.push("qa-sha-0000001")
	once("qa-sha-0000001", "1 change(s), pushed")
	r.push("qa-sha-0000002")
	once("qa-sha-0000002", "1 change(s), pushed")

	if err := testpeers.DeleteImage(t.Context(), r.ecr, testpeers.SeedAccount, r.repo, "qa-sha-0000002"); err != nil {
		t.Fatal(err)
	}
	once("qa-sha-0000002", "up to date (1 held)")
	if stderr := r.run("up to date (1 held)"); !strings.Contains(stderr, "would downgrade from qa-sha-0000002, which ECR no longer lists, to qa-sha-0000001") {
		t.Errorf("the log does not say why the marker is held:\n%s", stderr)
	}
	// A restart with an empty stateDir decides the same.
	if err := os.RemoveAll(filepath.Join(r.dir, "state")); err != nil {
		t.Fatal(err)
	}
	once("qa-sha-0000002", "up to date (1 held)")

	r.push("qa-sha-0000003")
	once("qa-sha-0000003", "1 change(s), pushed")
}

// TestRevertSticks: a person's `git revert` of the butler's bump (or an
// edit back to an older tag) is not undone: the butler holds the marker
// until a tag newer than the rejected one is pushed, also after a restart
// with an empty stateDir.
func TestRevertSticks(t *testing.T) {
	t.Parallel() // mostly waiting: with the other slow waiters, after the rest
	r := newRollbackEnv(t, "revert")
	e, push, marker, once := r.env, r.push, r.marker, r.run
	person := func(change func(work string)) {
		t.Helper()
		work := e.clone(t)
		change(work)
		gitOut(t, work, "push", "--quiet", "origin", "main")
	}
	who := []string{"-c", "user.name=A Person", "-c", "user.email=person@example.com"}

	push("qa-sha-0000001")
	once("1 change(s), pushed")
	push("qa-sha-0000002")
	once("1 change(s), pushed")
	if got := marker(); got != "qa-sha-0000002" {
		t.Fatalf("marker = %s after two pushes", got)
	}

	// A person reverts the butler's bump.
	person(func(work string) {
		gitOut(t, work, append(who, "revert", "--no-edit", "HEAD")...)
	})
	stderr := once("up to date (1 held)")
	if got := marker(); got != "qa-sha-0000001" {
		t.Errorf("marker = %s after the revert, want qa-sha-0000001", got)
	}
	if !strings.Contains(stderr, "changed falcon-qa:my-policy-bartender from qa-sha-0000002") || !strings.Contains(stderr, "A Person, person@example.com") {
		t.Errorf("the log does not name the person's change:\n%s", stderr)
	}
	once("up to date (1 held)")
	os.RemoveAll(filepath.Join(e.dir, "state")) // a restarted pod with an emptyDir
	once("up to date (1 held)")

	// A tag newer than the rejected one: the butler resumes.
	push("qa-sha-0000003")
	once("1 change(s), pushed")
	if got := marker(); got != "qa-sha-0000003" {
		t.Errorf("marker = %s after a newer push, want qa-sha-0000003", got)
	}

	// A person edits the marker back to an older tag by hand: the same.
	person(func(work string) {
		file := filepath.Join(work, "apps/bartender/deployment.yaml")
		b, _ := os.ReadFile(file)
		os.WriteFile(file, []byte(strings.Replace(string(b), "qa-sha-0000003", "qa-sha-0000001", 1)), 0o644)
		gitOut(t, work, append(who, "commit", "--quiet", "-am", "back to 1: 3 is broken")...)
	})
	once("up to date (1 held)")
	push("qa-sha-0000004")
	once("1 change(s), pushed")
	if got := marker(); got != "qa-sha-0000004" {
		t.Errorf("marker = %s, want qa-sha-0000004", got)
	}
}

// TestOnboardingReplacesPlaceholder: a team adopts the butler as the seed
// guide says, over an ECR repository whose images were all pushed before
// its commit. The marker's value is one the butler never wrote, so the
// first `once` writes the policy's choice: whether ECR never held the value,
// or lists it outside the policy's filter (pushed after the choice).
func TestOnboardingReplacesPlaceholder(t *testing.T) {
	t.Parallel() // mostly waiting: with the other slow waiters, after the rest
	for _, tt := range []struct {
		name   string
		pushes []string // in order, a second apart
	}{
		{"tag ECR never held", []string{"sha-aaaaaaa", "sha-ccccccc"}},
		{"tag outside the filter, pushed after the choice", []string{"sha-aaaaaaa", "sha-ccccccc", testpeers.SeedOldTag}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			needPeers(t)
			r := &rollbackEnv{t: t, repo: fmt.Sprintf("lrl_falcon_onboard_%d", rollbackRuns.Add(1)), ecr: moto.ECR(testpeers.SeedRegion)}
			if err := testpeers.CreateRepository(t.Context(), r.ecr, testpeers.SeedAccount, r.repo); err != nil {
				t.Fatal(err)
			}
			for _, tag := range tt.pushes {
				r.push(tag)
			}
			time.Sleep(1100 * time.Millisecond) // the team's commit comes after every push
			// The seed guide's Deployment verbatim, with its documented glob:sha-.* policy.
			deployment := strings.ReplaceAll(testpeers.SeedDeployment, testpeers.SeedRepository, r.repo)
			deployment = strings.Replace(deployment, ";glob:qa-sha-.*\"", ";glob:sha-.*\"", 1)
			r.env = setupRepo(t, "onboard", deployment)
			r.run("1 change(s), pushed")
			if got := r.marker(); got != "sha-ccccccc" {
				t.Errorf("marker = %s, want sha-ccccccc", got)
			}
			r.run("up to date")
		})
	}
}
