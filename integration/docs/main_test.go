// Package docs runs what the documentation tells a person to run, as
// written: the README's demo and commands, and the demo itself, in a copy
// of the repository. It is a package of its own so that it has go test's
// ten minutes to itself, apart from the rest of the integration tests; its
// commands start their own moto and git servers.
package docs

import (
	"os"
	"testing"

	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
)

var skipCause string // why the tests cannot run here

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	var ok bool
	if skipCause, ok = testpeers.CheckMoto("docs"); !ok {
		return 1
	}
	testpeers.IsolateAWS()
	defer func() {
		if repoCopyDir != "" {
			os.RemoveAll(repoCopyDir)
		}
	}()
	return m.Run()
}

func needPeers(t testing.TB) {
	t.Helper()
	if skipCause != "" {
		t.Skip(skipCause)
	}
}
