package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
)

var rollbackRuns int

// TestDeletedTagIsNotDowngraded runs `once` against moto: when the current
// tag is deleted from ECR, the butler keeps it (the older tag left was
// pushed before the commit that set it) and says so; a restart with an
// empty stateDir decides the same; a newer push moves the marker on.
func TestDeletedTagIsNotDowngraded(t *testing.T) {
	needPeers(t)
	ctx := t.Context()
	rollbackRuns++
	repo := fmt.Sprintf("lrl_falcon_rollback_%d", rollbackRuns)
	c := moto.ECR(testpeers.SeedRegion)
	if err := testpeers.CreateRepository(ctx, c, testpeers.SeedAccount, repo); err != nil {
		t.Fatal(err)
	}
	e := setupRepo(t, "rollback", strings.ReplaceAll(testpeers.SeedDeployment, testpeers.SeedRepository, repo))
	push := func(tag string) {
		time.Sleep(1100 * time.Millisecond) // moto and git keep whole seconds
		if _, err := testpeers.PushImage(ctx, c, testpeers.SeedAccount, repo, tag); err != nil {
			t.Fatal(err)
		}
	}
	once := func(wantTag, wantSummary string) {
		t.Helper()
		stdout, stderr, code := e.once(t)
		if code != 0 || !strings.Contains(stdout, wantSummary) {
			t.Fatalf("once: exit %d, stdout %q, want %q\nstderr:\n%s", code, stdout, wantSummary, stderr)
		}
		clone := e.clone(t)
		file, _ := os.ReadFile(filepath.Join(clone, "apps/bartender/deployment.yaml"))
		if !strings.Contains(string(file), "/"+repo+":"+wantTag+" ") {
			t.Fatalf("the marker is not at %s:\n%s", wantTag, file)
		}
	}

	push("qa-sha-0000001")
	once("qa-sha-0000001", "1 change(s), pushed")
	push("qa-sha-0000002")
	once("qa-sha-0000002", "1 change(s), pushed")

	if err := testpeers.DeleteImage(ctx, c, testpeers.SeedAccount, repo, "qa-sha-0000002"); err != nil {
		t.Fatal(err)
	}
	once("qa-sha-0000002", "up to date (1 held)")
	if _, stderr, _ := e.once(t); !strings.Contains(stderr, "would downgrade from qa-sha-0000002, which ECR no longer lists, to qa-sha-0000001") {
		t.Errorf("the log does not say why the marker is held:\n%s", stderr)
	}
	// A restart with an empty stateDir decides the same.
	if err := os.RemoveAll(filepath.Join(e.dir, "state")); err != nil {
		t.Fatal(err)
	}
	once("qa-sha-0000002", "up to date (1 held)")

	push("qa-sha-0000003")
	once("qa-sha-0000003", "1 change(s), pushed")
}
