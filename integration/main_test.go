package integration

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"testing"

	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
)

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
	var ok bool
	if skipCause, ok = testpeers.CheckMoto("integration"); !ok {
		return 1
	} else if skipCause != "" {
		return m.Run()
	}
	testpeers.IsolateAWS()
	var (
		cleanup func()
		err     error
	)
	if binary, cleanup, err = testpeers.BuildCommand("../cmd/imagebutler"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cleanup()
	moto, err = testpeers.StartMoto(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	defer moto.Stop()
	return m.Run()
}

func needPeers(t testing.TB) {
	t.Helper()
	if skipCause != "" {
		t.Skip(skipCause)
	}
}
