// Package peers runs the peer suite: the cases derived from the test suites
// of Flux and Argo CD Image Updater (../testdata/peers) through the real
// binary against moto and git http-backend. It is a package of its own so
// that it has go test's ten minutes to itself, apart from the rest of the
// integration tests.
package peers

import (
	"fmt"
	"os"
	"testing"

	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
)

const (
	butlerName  = "Light Account Butler"
	butlerEmail = "butler@example.com"
	gitUser     = "butler"
	gitToken    = "tok-9f8e7d6c5b4a-secret"
)

var (
	binary    string // the imagebutler command, built for the tests
	skipCause string // why the tests cannot run here
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	var ok bool
	if skipCause, ok = testpeers.CheckMoto("peers"); !ok {
		return 1
	} else if skipCause != "" {
		return m.Run()
	}
	testpeers.IsolateAWS()
	var (
		cleanup func()
		err     error
	)
	if binary, cleanup, err = testpeers.BuildCommand("../../cmd/imagebutler"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cleanup()
	return m.Run()
}

func needPeers(t testing.TB) {
	t.Helper()
	if skipCause != "" {
		t.Skip(skipCause)
	}
}
