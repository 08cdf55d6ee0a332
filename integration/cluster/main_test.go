// Package cluster tests several `imagebutler run` replicas sharing the
// repositories through Leases on a real kube-apiserver and etcd (started
// here; built by integration/kube/build-kube.sh), with moto for ECR and git
// http-backend for git. It has a package of its own so that its minutes of
// lease durations do not count against the integration package's ten.
package cluster

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
)

var (
	moto      *testpeers.Moto
	binary    string // the imagebutler command, built for the tests
	kubeBin   string // the folder of kube-apiserver and kubectl
	skipCause string // why the tests cannot run here
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	var ok bool
	if skipCause, ok = testpeers.CheckMoto("cluster"); !ok {
		return 1
	} else if skipCause != "" {
		return m.Run()
	}
	var err error
	if kubeBin, err = testpeers.KubeBinaries(); err != nil {
		// As the Gitea tests do: skipped on a developer's machine, saying
		// how to build the servers; a failure in CI.
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "cluster: %v\n", err)
			return 1
		}
		skipCause = err.Error()
		fmt.Fprintln(os.Stderr, "cluster: skipped:", skipCause)
		return m.Run()
	}
	testpeers.IsolateAWS()
	var cleanup func()
	if binary, cleanup, err = testpeers.BuildCommand("../../cmd/imagebutler"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cleanup()
	if moto, err = testpeers.StartMoto(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		return 1
	}
	defer moto.Stop()
	defer func() {
		if kube != nil {
			kube.Stop()
		}
		if kubeDir != "" {
			os.RemoveAll(kubeDir)
		}
	}()
	return m.Run()
}

var (
	kubeOnce sync.Once
	kube     *testpeers.Kube // the control plane the tests share; nil until one asks
	kubeDir  string
	kubeErr  error
)

// controlPlane is the etcd and kube-apiserver the package's tests share,
// started by the first that asks (one start, not one per test: it costs
// seconds of CPU). The replicas run as butlerUser.
func controlPlane(t testing.TB) *testpeers.Kube {
	t.Helper()
	needPeers(t)
	kubeOnce.Do(func() {
		if kubeDir, kubeErr = os.MkdirTemp("", "imagebutler-kube-*"); kubeErr == nil {
			kube, kubeErr = testpeers.StartKube(context.Background(), kubeBin, kubeDir, butlerUser)
		}
	})
	if kubeErr != nil {
		t.Fatal(kubeErr)
	}
	return kube
}

func needPeers(t testing.TB) {
	t.Helper()
	if skipCause != "" {
		t.Skip(skipCause)
	}
}
