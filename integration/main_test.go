package integration

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
)

// skipVar, set to 1, skips the integration tests where moto is missing;
// otherwise they fail there.
const skipVar = "IMAGEBUTLER_SKIP_INTEGRATION"

var (
	moto      *testpeers.Moto
	binary    string // the imagebutler command, built for the tests
	skipCause string // why the tests cannot run here
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	// The tests that call t.Parallel mostly wait (moto's whole seconds,
	// Gitea, the disk): they run three at once unless -parallel says
	// otherwise, whatever the number of cores.
	// go test always passes its -timeout (ten minutes by default) to the
	// test binary, so the package cannot lengthen its own: it must finish
	// in ten minutes with two suites running at once, so no test here
	// makes more work than its point needs.
	flag.Parse()
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["test.parallel"] {
		flag.Set("test.parallel", "3")
	}
	// gittestserver's SSH server logs every connection through the standard
	// logger; this test binary has no other use for it.
	log.SetOutput(io.Discard)
	if err := testpeers.MotoAvailable(); err != nil {
		// A skipped package prints "ok" like a passing one: without moto the
		// package fails, unless the person said to skip it.
		if os.Getenv("CI") == "true" || os.Getenv(skipVar) != "1" {
			fmt.Fprintf(os.Stderr, "integration: %v\nInstall moto (pip install 'moto[server]' where PyPI is reachable), or set %s=1 to skip these tests.\n", err, skipVar)
			return 1
		}
		skipCause = err.Error() + " (" + skipVar + "=1)"
		fmt.Fprintln(os.Stderr, "integration: skipped:", skipCause)
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
	if out, err := exec.Command("go", "build", "-o", binary, "../cmd/imagebutler").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building imagebutler: %v\n%s", err, out)
		return 1
	}
	moto, err = testpeers.StartMoto(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	defer moto.Stop()
	defer stopGitea()
	return m.Run()
}

func needPeers(t testing.TB) {
	t.Helper()
	if skipCause != "" {
		t.Skip(skipCause)
	}
}
