// Command kube-apiserver is Kubernetes' API server, built from the module
// proxy for the tests that need a real control plane (leases, server-side
// dry-run of the deploy files). It is the upstream command, unchanged.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
