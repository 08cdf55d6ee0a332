package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRuntimeAsNonrootReadOnlyRoot proves the image's runtime assumptions
// without a container engine: the static binary (built as the Dockerfile
// builds it) runs as uid 65532 under bubblewrap, with a read-only root, no
// HOME, no writable /tmp and only stateDir writable, and does a real cycle
// against moto and git http-backend.
func TestRuntimeAsNonrootReadOnlyRoot(t *testing.T) {
	needPeers(t)
	bwrap, err := exec.LookPath("bwrap")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but bwrap is missing (.ci/run installs bubblewrap)")
		}
		t.Skip("bwrap (Debian's bubblewrap) is not installed")
	}
	static := filepath.Join(t.TempDir(), "imagebutler")
	build := exec.Command("go", "build", "-trimpath", "-o", static, "../cmd/imagebutler")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
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
