package config

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"time"
)

// Defaults of the cluster section: client-go's leader election defaults,
// whose safety margin (lease duration minus renew deadline) is positive.
const (
	DefaultShards        = 16
	DefaultLeasePrefix   = "imagebutler"
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// Cluster spreads the repositories over several replicas that share the
// work through Kubernetes Leases: one Lease per shard, a repository's shard
// a stable hash of its name (cluster.Shard). Without it (the default) one
// replica works on every repository.
type Cluster struct {
	// Shards is how many shards the repositories are spread over (default
	// 16, between 1 and 1024). Every replica must use the same number.
	Shards int `yaml:"shards"`
	// Namespace holds the Leases (default: POD_NAMESPACE, else the pod's
	// own namespace as the service account mount gives it, else "default").
	Namespace string `yaml:"namespace"`
	// LeasePrefix starts the name of every Lease (default "imagebutler"):
	// <prefix>-shard-<n> and <prefix>-replica-<hash of identity>.
	LeasePrefix string `yaml:"leasePrefix"`
	// LeaseDuration is how long a Lease not renewed stays its holder's
	// (default 15s; whole seconds, as the Lease stores it).
	LeaseDuration Duration `yaml:"leaseDuration"`
	// RenewDeadline is how long a replica goes on pushing after its last
	// renewal; past it the replica stops pushing (default 10s). It must be
	// shorter than leaseDuration: the difference is the safety margin.
	RenewDeadline Duration `yaml:"renewDeadline"`
	// RetryPeriod is how often Leases are renewed and the shards
	// rebalanced (default 2s).
	RetryPeriod Duration `yaml:"retryPeriod"`
	// Identity names this replica in the Leases (default: POD_NAME, else
	// the host name). Replicas must have distinct identities.
	Identity string `yaml:"identity"`
	// Kubeconfig is a kubeconfig file to reach the API server (default:
	// in-cluster, through the pod's service account).
	Kubeconfig string `yaml:"kubeconfig"`
	// Address is the URL other replicas forward push events to (default:
	// http://$POD_IP plus the port of listen).
	Address string `yaml:"address"`
	// SecretFile holds the key that signs the passes one replica forwards to
	// another (a push event received by a replica that does not hold the
	// repository's shard). Every replica reads the same Secret. Required
	// with events.
	SecretFile string `yaml:"secretFile"`
}

// leasePrefixRE is a name other names can start: lowercase letters, digits
// and dashes, as a DNS label; short enough for "-replica-" and a hash after.
var leasePrefixRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$`)

// serviceAccountNamespace is where a pod's own namespace is mounted.
const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

func (c *Cluster) applyDefaults() {
	if c.Shards == 0 {
		c.Shards = DefaultShards
	}
	if c.LeasePrefix == "" {
		c.LeasePrefix = DefaultLeasePrefix
	}
	if c.LeaseDuration == 0 {
		c.LeaseDuration = Duration(DefaultLeaseDuration)
	}
	if c.RenewDeadline == 0 {
		c.RenewDeadline = Duration(DefaultRenewDeadline)
	}
	if c.RetryPeriod == 0 {
		c.RetryPeriod = Duration(DefaultRetryPeriod)
	}
	if c.Namespace == "" {
		c.Namespace = os.Getenv("POD_NAMESPACE")
	}
	if c.Namespace == "" {
		if b, err := os.ReadFile(serviceAccountNamespace); err == nil {
			c.Namespace = string(b)
		}
	}
	if c.Namespace == "" {
		c.Namespace = "default"
	}
	if c.Identity == "" {
		c.Identity = os.Getenv("POD_NAME")
	}
	if c.Identity == "" {
		c.Identity, _ = os.Hostname()
	}
}

func (c *Cluster) validate(p *problems, at func(keys ...any) int, events bool, listen string) {
	if events && c.SecretFile == "" {
		p.add(at("cluster"), "cluster.secretFile", "must be set with events: a replica forwards the passes of the repositories it does not hold, signed with this key, to the replica that holds them")
	}
	if events && listen == "" {
		p.add(at("cluster"), "cluster", "needs listen with events: replicas forward passes to each other's POST /cluster/pass")
	}
	if c.Shards < 1 || c.Shards > 1024 {
		p.add(at("cluster", "shards"), "cluster.shards", "must be between 1 and 1024, got %d", c.Shards)
	}
	if !leasePrefixRE.MatchString(c.LeasePrefix) {
		p.add(at("cluster", "leasePrefix"), "cluster.leasePrefix", "%q is not a name prefix: lowercase letters, digits and dashes, at most 40, starting and ending with a letter or digit", c.LeasePrefix)
	}
	ld, rd, rp := time.Duration(c.LeaseDuration), time.Duration(c.RenewDeadline), time.Duration(c.RetryPeriod)
	switch {
	case ld < time.Second || ld%time.Second != 0:
		p.add(at("cluster", "leaseDuration"), "cluster.leaseDuration", "must be whole seconds, at least 1s (a Lease stores seconds), got %s", ld)
	case rd >= ld:
		p.add(at("cluster", "renewDeadline"), "cluster.renewDeadline", "must be shorter than leaseDuration (%s), got %s: the difference is the time by which a replica that cannot renew stops pushing before another may take its shards", ld, rd)
	case rp < 100*time.Millisecond:
		p.add(at("cluster", "retryPeriod"), "cluster.retryPeriod", "must be at least 100ms, got %s", rp)
	case rd <= rp*6/5:
		// client-go's own rule (JitterFactor 1.2): a deadline of one retry
		// would give up after a single failed renewal.
		p.add(at("cluster", "renewDeadline"), "cluster.renewDeadline", "must be longer than 1.2 x retryPeriod (%s), got %s", rp, rd)
	}
	if c.Identity == "" {
		p.add(at("cluster", "identity"), "cluster.identity", "is empty and neither POD_NAME nor the host name gives one")
	}
	if c.Kubeconfig != "" {
		if _, err := os.Stat(c.Kubeconfig); err != nil {
			p.add(at("cluster", "kubeconfig"), "cluster.kubeconfig", "%v", err)
		}
	}
	if c.Address != "" && !httpURL(c.Address) {
		p.add(at("cluster", "address"), "cluster.address", "%q is not an http:// or https:// URL", c.Address)
	}
}

// String names the cluster settings in one line, for the start-up log.
func (c *Cluster) String() string {
	return fmt.Sprintf("%d shards, Leases %s/%s-*, identity %s, lease %s, renew deadline %s, retry %s",
		c.Shards, c.Namespace, c.LeasePrefix, c.Identity, time.Duration(c.LeaseDuration), time.Duration(c.RenewDeadline), time.Duration(c.RetryPeriod))
}

// httpURL says whether s is an absolute http:// or https:// URL.
func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
