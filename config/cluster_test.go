package config

import (
	"testing"
	"time"
)

// TestClusterDefaults: an empty cluster section turns clustering on with
// client-go's lease timings, the identity and namespace from the pod's
// environment; without the section there is no cluster.
func TestClusterDefaults(t *testing.T) {
	t.Setenv("POD_NAME", "imagebutler-7d9f-x2")
	t.Setenv("POD_NAMESPACE", "gitops")
	const base = "listen: \"\"\ngit: {author: {name: b, email: b@x}}\nrepositories: [{url: /srv/git/apps, branch: main}]\n"
	c, err := Parse("min.yaml", []byte(base+"cluster: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Cluster{Shards: 16, Namespace: "gitops", LeasePrefix: "imagebutler", Identity: "imagebutler-7d9f-x2",
		LeaseDuration: Duration(15 * time.Second), RenewDeadline: Duration(10 * time.Second), RetryPeriod: Duration(2 * time.Second)}
	if c.Cluster == nil || *c.Cluster != want {
		t.Errorf("cluster = %+v, want %+v", c.Cluster, want)
	}
	if c, err := Parse("min.yaml", []byte(base)); err != nil || c.Cluster != nil {
		t.Errorf("without a cluster section: %+v, %v", c.Cluster, err)
	}
}
