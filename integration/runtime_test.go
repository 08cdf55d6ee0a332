package integration

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
)

// TestRuntimeAsNonrootReadOnlyRoot proves the image's runtime assumptions
// without a container engine: the static binary (built as the Dockerfile
// builds it) runs as uid 65532 under bubblewrap, with a read-only root, no
// HOME, no writable /tmp and only stateDir writable, and does a real cycle
// against moto and git http-backend.
func TestRuntimeAsNonrootReadOnlyRoot(t *testing.T) {
	needPeers(t)
	bwrap := needBwrap(t)
	static := buildStatic(t)
	e := setup(t, "runtime", "")
	state := filepath.Join(e.dir, "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	probe := filepath.Join(filepath.Dir(static), "written-outside")
	cmd := exec.Command(bwrap,
		"--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
		"--bind", state, state,
		"--unshare-user", "--uid", "65532", "--gid", "65532",
		"--die-with-parent", "--clearenv",
		"--setenv", "AWS_ACCESS_KEY_ID", "testing", "--setenv", "AWS_SECRET_ACCESS_KEY", "testing",
		"--setenv", "AWS_REGION", "us-east-2", "--setenv", "AWS_EC2_METADATA_DISABLED", "true",
		"--", static, "once", "--config", e.config)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("once under bubblewrap: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "1 change(s), pushed ") {
		t.Errorf("once under bubblewrap pushed nothing:\n%s\n%s", stdout.String(), stderr.String())
	}
	if _, err := os.Stat(probe); err == nil {
		t.Errorf("something was written beside the binary")
	}
	// The read-only root held: the process could not write outside stateDir.
	check := exec.Command(bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--bind", state, state,
		"--unshare-user", "--uid", "65532", "--clearenv", "--", "/bin/sh", "-c", "touch "+probe+" 2>/dev/null; id -u")
	out, err := check.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "65532" {
		t.Errorf("the sandbox is not what the test assumes: uid %q, %v", out, err)
	}
	if _, err := os.Stat(probe); err == nil {
		t.Errorf("the sandbox's root is writable")
	}
}

// needBwrap returns the path of bwrap, or skips the test outside CI.
func needBwrap(t *testing.T) string {
	t.Helper()
	bwrap, err := exec.LookPath("bwrap")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but bwrap is missing (.ci/run installs bubblewrap)")
		}
		t.Skip("bwrap (Debian's bubblewrap) is not installed")
	}
	return bwrap
}

// buildStatic builds the command as the Dockerfile does (static, trimmed).
func buildStatic(t *testing.T) string {
	t.Helper()
	static := filepath.Join(t.TempDir(), "imagebutler")
	build := exec.Command("go", "build", "-trimpath", "-o", static, "../cmd/imagebutler")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return static
}

// A clone that fills the disk fails the repository at once with the
// disk's error. go-git's file:// transport used to wait, past any timeout,
// for git-upload-pack, blocked writing the rest of a pack nobody read.
// stateDir is a 1 MiB tmpfs (bubblewrap's --size) and the repository
// holds 6 MB that does not compress.
func TestFullDiskDuringCloneFails(t *testing.T) {
	bwrap := needBwrap(t)
	bin := buildStatic(t)
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed")
	if err := os.MkdirAll(filepath.Join(seed, "apps"), 0o755); err != nil {
		t.Fatal(err)
	}
	noise := make([]byte, 6<<20)
	rand.NewChaCha8([32]byte{1}).Read(noise) // does not compress
	if err := os.WriteFile(filepath.Join(seed, "apps", "noise.bin"), noise, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(seed, "apps", "deployment.yaml"), []byte(testpeers.SeedDeployment), 0o644); err != nil {
		t.Fatal(err)
	}
	remote := filepath.Join(dir, "remote.git")
	for _, args := range [][]string{
		{"init", "--quiet", "--initial-branch=main", seed},
		{"-C", seed, "add", "--all"},
		{"-C", seed, "commit", "--quiet", "-m", "noise"},
		{"clone", "--quiet", "--bare", seed, remote},
	} {
		if _, err := testpeers.Git("", args...); err != nil {
			t.Fatal(err)
		}
	}
	state := filepath.Join(dir, "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(`stateDir: `+state+`
listen: ""
repositoryTimeout: 30s
aws: {region: us-east-2}
git:
  author: {name: Light Account Butler, email: butler@example.com}
repositories:
  - url: file://`+remote+`
    branch: main
`), 0o644); err != nil {
		t.Fatal(err)
	}
	// The guard against a hang is generous: a loaded machine is slow, a hung
	// clone never ends.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
		"--bind", dir, dir, "--size", "1048576", "--tmpfs", state, "--die-with-parent",
		"--", bin, "once", "--config", cfg)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("once on a full disk did not end in 3 minutes (the repository's timeout is 30s)\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("once: %v, want exit status 1", err)
	}
	if !strings.Contains(stdout.String(), "FAIL") || !strings.Contains(stdout.String(), "no space left on device") {
		t.Errorf("once does not report the full disk:\nstdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
}
