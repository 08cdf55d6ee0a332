package cluster

import (
	"fmt"
	"time"

	coordclient "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/imagebutler/imagebutler/config"
)

// Connect returns the client of cfg's Leases: through cfg.Kubeconfig when
// set, else in-cluster (the pod's service account). Each request gives up
// after the renew deadline.
func Connect(cfg config.Cluster) (coordclient.LeaseInterface, error) {
	var (
		rc  *rest.Config
		err error
	)
	if cfg.Kubeconfig != "" {
		rc, err = clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("cluster.kubeconfig %s: %w", cfg.Kubeconfig, err)
		}
	} else if rc, err = rest.InClusterConfig(); err != nil {
		return nil, fmt.Errorf("cluster: not in a pod (%w); set cluster.kubeconfig to run outside Kubernetes", err)
	}
	rc.Timeout = time.Duration(cfg.RenewDeadline)
	rc.UserAgent = "imagebutler"
	// A tick renews every shard held: client-go's default of 5 requests a
	// second would throttle a replica holding 16.
	rc.QPS, rc.Burst = 50, 100
	c, err := coordclient.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	return c.Leases(cfg.Namespace), nil
}
