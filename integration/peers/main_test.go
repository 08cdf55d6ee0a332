// Package peers runs the peer suite: the cases derived from the test suites
// of Flux and Argo CD Image Updater (../testdata/peers) through the real
// binary against moto and git http-backend. It is a package of its own so
// that it has go test's ten minutes to itself, apart from the rest of the
// integration tests.
package peers

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
)

const (
	butlerName  = "Light Account Butler"
	butlerEmail = "butler@example.com"
	gitUser     = "butler"
	gitToken    = "tok-9f8e7d6c5b4a-secret"
)

// skipVar, set to 1, skips the peer suite where moto is missing; otherwise
// it fails there (as the integration package does).
const skipVar = "IMAGEBUTLER_SKIP_INTEGRATION"

var (
	binary    string // the imagebutler command, built for the tests
	skipCause string // why the tests cannot run here
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if err := testpeers.MotoAvailable(); err != nil {
		if os.Getenv("CI") == "true" || os.Getenv(skipVar) != "1" {
			fmt.Fprintf(os.Stderr, "peers: %v\nInstall moto (pip install 'moto[server]' where PyPI is reachable), or set %s=1 to skip these tests.\n", err, skipVar)
			return 1
		}
		skipCause = err.Error() + " (" + skipVar + "=1)"
		fmt.Fprintln(os.Stderr, "peers: skipped:", skipCause)
		return m.Run()
	}
	// The SDK's default chain must find these, and nothing of the developer's.
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "",
		"AWS_REGION": testpeers.SeedRegion, "AWS_PROFILE": "", "AWS_CONFIG_FILE": "/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true",
	} {
		if v == "" {
			os.Unsetenv(k)
		} else {
			os.Setenv(k, v)
		}
	}
	dir, err := os.MkdirTemp("", "imagebutler-bin-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "imagebutler")
	if out, err := exec.Command("go", "build", "-o", binary, "../../cmd/imagebutler").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building imagebutler: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

func needPeers(t testing.TB) {
	t.Helper()
	if skipCause != "" {
		t.Skip(skipCause)
	}
}
