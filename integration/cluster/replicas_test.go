package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordclient "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/imagebutler/imagebutler/cluster"
	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
	"github.com/imagebutler/imagebutler/scanner"
)

// The cluster the tests run: short leases, so that a takeover takes
// seconds; the same ratios as client-go's 15 s / 10 s / 2 s.
const (
	shards        = 16
	leaseDuration = 4 * time.Second
	renewDeadline = 3 * time.Second
	retryPeriod   = 1 * time.Second
	// namespace holds every fleet's Leases, each fleet with a prefix of
	// its own.
	namespace = "fleets"
	// butlerUser is the service account the replicas run as: its rights
	// are only what deploy/kustomize/examples/cluster/role.yaml grants.
	butlerUser = "system:serviceaccount:fleets:imagebutler"
	gitRepos   = 40
	ecrRepos   = 4
)

// fleetConfig says what a fleet's replicas run.
type fleetConfig struct {
	schedule string
	extra    string // more config (events, say), after the cluster section
	repos    int    // git repositories (default gitRepos)
	shards   int    // default shards
	// The Lease timings (default leaseDuration, renewDeadline, retryPeriod).
	lease, renew, retry time.Duration
}

// fleet is the replicas of one test, the servers they use and what the
// test saw of them.
type fleet struct {
	t        *testing.T
	dir      string
	kube     *testpeers.Kube
	leases   coordclient.LeaseInterface
	git      *testpeers.GitServer
	repos    []string      // bare repository folders
	names    []string      // the butler's names of the repositories (URL@main)
	ecrOf    []int         // the ECR repository each git repository follows
	prefix   string        // of the fleet's Leases
	template string        // the config, with STATE, LISTEN and CLUSTER to fill
	cluster  string        // the cluster section
	team     string        // the ECR repositories are <team>/app-<k>
	patience time.Duration // the longest wait (default 3 minutes)

	mu       sync.Mutex
	replicas map[string]*replica
}

type replica struct {
	name string
	cmd  *exec.Cmd
	base string
	logs *logBuffer
	done chan struct{}
}

// logBuffer keeps what a replica printed.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// deployment is a git repository's manifest, following ECR repository
// ecrRepo at tag.
func deployment(ecrRepo, tag string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: team
  annotations:
    app.lilly.com/flux.automated: "true"
    app.lilly.com/flux.simple.app: "%s;%s;semver:>=1.0.0"
spec:
  template:
    spec:
      containers:
        - name: app
          image: %s.dkr.ecr.%s.amazonaws.com/%s:%s # {"$imagepolicy": "team:app"}
`, testpeers.SeedAccount, ecrRepo, testpeers.SeedAccount, testpeers.SeedRegion, ecrRepo, tag)
}

// fleets counts the fleets made, so that each has ECR repositories of its own.
var fleets int

// ecrRepo is the name of ECR repository k.
func (f *fleet) ecrRepo(k int) string { return fmt.Sprintf("%s/app-%d", f.team, k) }

// newFleet starts a control plane and fc.repos repositories (r00, r01, …,
// following the fleet's ECR repositories app-0 … app-3 in turn) at 1.0.0,
// for replicas that run as fc says.
func newFleet(t *testing.T, fc fleetConfig) *fleet {
	if fc.repos == 0 {
		fc.repos = gitRepos
	}
	if fc.shards == 0 {
		fc.shards = shards
	}
	if fc.lease == 0 {
		fc.lease, fc.renew, fc.retry = leaseDuration, renewDeadline, retryPeriod
	}
	needPeers(t)
	ctx := t.Context()
	fleets++
	f := &fleet{t: t, dir: t.TempDir(), replicas: map[string]*replica{}, team: fmt.Sprintf("team%d", fleets), patience: 3 * time.Minute,
		prefix: fmt.Sprintf("fleet%d", fleets)}
	var err error
	f.kube = controlPlane(t)
	// The namespace, then the Role the replicas need, from the kustomize
	// example: applied, so that a later fleet applies them again.
	role, _ := filepath.Abs("../../deploy/kustomize/examples/cluster/role.yaml")
	ns := filepath.Join(f.dir, "namespace.yaml")
	os.WriteFile(ns, []byte("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+namespace+"\n"), 0o644)
	for _, args := range [][]string{{"apply", "-f", ns}, {"-n", namespace, "apply", "-f", role}} {
		if _, err := f.kube.Run(ctx, testpeers.KubeAdmin, f.dir, args...); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", f.kube.Admin)
	if err != nil {
		t.Fatal(err)
	}
	c, err := coordclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.leases = c.Leases(namespace)

	ecrc := moto.ECR(testpeers.SeedRegion)
	for k := range ecrRepos {
		repo := f.ecrRepo(k)
		if err := testpeers.CreateRepository(ctx, ecrc, testpeers.SeedAccount, repo); err != nil {
			t.Fatal(err)
		}
		if _, err := testpeers.PushImage(ctx, ecrc, testpeers.SeedAccount, repo, "1.0.0"); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(f.dir, "remote")
	os.MkdirAll(root, 0o755)
	if f.git, err = testpeers.NewGitServer(root, "", ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.git.Close)
	var repos strings.Builder
	for i := range fc.repos {
		name := fmt.Sprintf("r%02d", i)
		var url string
		if i < ecrRepos {
			url, err = f.git.InitRepo(name, "main", map[string]string{"deploy.yaml": deployment(f.ecrRepo(i%ecrRepos), "1.0.0")})
		} else { // a copy of the first that follows the same ECR repository
			url = f.git.URL + "/" + name + ".git"
			err = os.CopyFS(filepath.Join(root, name+".git"), os.DirFS(f.repos[i%ecrRepos]))
		}
		if err != nil {
			t.Fatal(err)
		}
		f.repos = append(f.repos, filepath.Join(root, name+".git"))
		f.names = append(f.names, url+"@main")
		f.ecrOf = append(f.ecrOf, i%ecrRepos)
		fmt.Fprintf(&repos, "  - url: %q\n    branch: main\n", url)
	}
	kubeconfig, err := f.kube.Kubeconfig(butlerUser)
	if err != nil {
		t.Fatal(err)
	}
	f.template = fmt.Sprintf(`schedule: %q
stateDir: STATE
listen: LISTEN
aws:
  region: %s
  endpoint: %s
git:
  author: {name: imagebutler, email: imagebutler@example.com}
CLUSTER
repositories:
%s`, fc.schedule, testpeers.SeedRegion, moto.Endpoint, repos.String())
	f.cluster = fmt.Sprintf(`cluster:
  shards: %d
  namespace: %s
  leasePrefix: %s
  leaseDuration: %s
  renewDeadline: %s
  retryPeriod: %s
  kubeconfig: %q
%s`, fc.shards, namespace, f.prefix, fc.lease, fc.renew, fc.retry, kubeconfig, fc.extra)
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, r := range f.replicas {
			r.cmd.Process.Kill()
			<-r.done
			if t.Failed() {
				t.Logf("replica %s logs (last 6000 bytes):\n%s", r.name, tailString(r.logs.String(), 600000))
			}
		}
	})
	return f
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// start starts replica name (POD_NAME=name) with a working copy folder of
// its own.
func (f *fleet) start(name string) *replica { return f.run(name, f.cluster) }

// startAlone starts name with no cluster section: one replica, as without
// clustering.
func (f *fleet) startAlone(name string) *replica { return f.run(name, "") }

func (f *fleet) run(name, clusterSection string) *replica {
	t := f.t
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := strings.NewReplacer("STATE", strconv.Quote(filepath.Join(f.dir, "state-"+name)), "LISTEN", strconv.Quote(addr), "CLUSTER", clusterSection).Replace(f.template)
	path := filepath.Join(f.dir, name+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &replica{name: name, base: "http://" + addr, logs: &logBuffer{}, done: make(chan struct{})}
	r.cmd = exec.Command(binary, "run", "--config", path, "--grace", "20s")
	r.cmd.Env = append(os.Environ(), "POD_NAME="+name, "POD_IP=127.0.0.1")
	r.cmd.Stdout, r.cmd.Stderr = r.logs, r.logs
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.cmd.Wait(); close(r.done) }()
	f.mu.Lock()
	f.replicas[name] = r
	f.mu.Unlock()
	return r
}

// holders is who holds each shard's Lease now ("" for none), from one
// listing.
func (f *fleet) holders() (map[int]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := f.leases.List(ctx, metav1.ListOptions{LabelSelector: cluster.LabelKind + "=shard," + cluster.LabelPrefix + "=" + f.prefix})
	if err != nil {
		return nil, err
	}
	h := map[int]string{}
	for _, l := range list.Items {
		n, err := strconv.Atoi(strings.TrimPrefix(l.Name, f.prefix+"-shard-"))
		if err != nil {
			return nil, fmt.Errorf("lease %s: %v", l.Name, err)
		}
		if l.Spec.HolderIdentity != nil {
			h[n] = *l.Spec.HolderIdentity
		} else {
			h[n] = ""
		}
	}
	return h, nil
}

// balanced says whether the shards are spread over exactly live, each
// holding ⌊16/R⌋ or ⌈16/R⌉.
func balanced(h map[int]string, live ...string) bool {
	if len(h) != shards {
		return false
	}
	count := map[string]int{}
	for _, who := range h {
		if !slices.Contains(live, who) {
			return false
		}
		count[who]++
	}
	lo, hi := shards/len(live), (shards+len(live)-1)/len(live)
	for _, who := range live {
		if count[who] < lo || count[who] > hi {
			return false
		}
	}
	return true
}

// waitUntil polls cond every 100 ms until it holds (f.patience at most: the
// machine may be loaded) and returns how long that took.
func (f *fleet) waitUntil(what string, cond func() bool) time.Duration {
	f.t.Helper()
	start := time.Now()
	deadline := start.Add(f.patience)
	for !cond() {
		if time.Now().After(deadline) {
			h, err := f.holders()
			f.t.Fatalf("gave up waiting for %s (holders %v %v)", what, h, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start)
}

// waitBalanced waits until the shards are spread over live.
func (f *fleet) waitBalanced(live ...string) time.Duration {
	f.t.Helper()
	return f.waitUntil(fmt.Sprintf("the shards spread over %v", live), func() bool {
		h, err := f.holders()
		return err == nil && balanced(h, live...)
	})
}

// tagOf is the tag repository i's manifest holds on main.
func (f *fleet) tagOf(i int) string {
	out, err := testpeers.Git(f.repos[i], "show", "main:deploy.yaml")
	if err != nil {
		return ""
	}
	_, after, _ := strings.Cut(out, f.ecrRepo(f.ecrOf[i])+":")
	tag, _, _ := strings.Cut(after, " ")
	return tag
}

// waitAllAt waits until every repository holds tag, and returns how long
// that took.
func (f *fleet) waitAllAt(tag string) time.Duration {
	f.t.Helper()
	return f.waitUntil("every repository at "+tag, func() bool {
		for i := range f.repos {
			if f.tagOf(i) != tag {
				return false
			}
		}
		return true
	})
}

// pushTag pushes tag to every ECR repository.
func (f *fleet) pushTag(tag string) {
	f.t.Helper()
	time.Sleep(1100 * time.Millisecond) // moto keeps whole seconds
	c := moto.ECR(testpeers.SeedRegion)
	for k := range ecrRepos {
		if _, err := testpeers.PushImage(f.t.Context(), c, testpeers.SeedAccount, f.ecrRepo(k), tag); err != nil {
			f.t.Fatal(err)
		}
	}
}

// heads is each repository's main.
func (f *fleet) heads() []string {
	var hs []string
	for _, r := range f.repos {
		out, _ := testpeers.Git(r, "rev-parse", "main")
		hs = append(hs, strings.TrimSpace(out))
	}
	return hs
}

// checkHistories asserts that each repository's main is the initial commit
// and then one butler commit per tag of want, in order, each the child of
// the one before: no commit lost, none made twice, none reversed.
func (f *fleet) checkHistories(want ...string) {
	f.t.Helper()
	f.checkHistoriesOf(func(int) []string { return want })
}

// checkHistoriesOf is checkHistories with the tags of repository i want(i).
func (f *fleet) checkHistoriesOf(wantOf func(i int) []string) {
	f.t.Helper()
	for i, r := range f.repos {
		want := wantOf(i)
		out, err := testpeers.Git(r, "log", "--first-parent", "--reverse", "--format=%H %P|%an", "main")
		if err != nil {
			f.t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		var tags []string
		prev := ""
		for j, line := range lines {
			ids, author, _ := strings.Cut(line, "|")
			fields := strings.Fields(ids)
			if j > 0 && (len(fields) != 2 || fields[1] != prev) {
				f.t.Errorf("%s: commit %s has parents %v, want the previous head %s", f.names[i], fields[0], fields[1:], prev)
			}
			prev = fields[0]
			if j == 0 {
				continue
			}
			if author != "imagebutler" {
				f.t.Errorf("%s: commit %s by %s", f.names[i], fields[0], author)
			}
			content, _ := testpeers.Git(r, "show", fields[0]+":deploy.yaml")
			_, after, _ := strings.Cut(content, f.ecrRepo(f.ecrOf[i])+":")
			tag, _, _ := strings.Cut(after, " ")
			tags = append(tags, tag)
		}
		if !slices.Equal(tags, want) {
			f.t.Errorf("%s: the butler's commits set %v, want %v (one commit per new tag)", f.names[i], tags, want)
		}
	}
}

// clusterStatus is what a replica's /status says of the cluster.
func (r *replica) clusterStatus() (cluster.Status, error) {
	resp, err := http.Get(r.base + "/status")
	if err != nil {
		return cluster.Status{}, err
	}
	defer resp.Body.Close()
	var st struct {
		Cluster *cluster.Status `json:"cluster"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return cluster.Status{}, err
	}
	if st.Cluster == nil {
		return cluster.Status{}, fmt.Errorf("/status has no cluster")
	}
	return *st.Cluster, nil
}

// metric is the value of the metric line starting with name in r's /metrics.
func (r *replica) metric(name string) float64 {
	resp, err := http.Get(r.base + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

// writes is the Lease writes r made so far.
func (r *replica) writes() float64 {
	sum := 0.0
	for _, res := range []string{"ok", "conflict", "error"} {
		sum += max(0, r.metric(`imagebutler_lease_writes_total{result="`+res+`"}`))
	}
	return sum
}

func (r *replica) signal(sig syscall.Signal) {
	r.cmd.Process.Signal(sig)
}

// statusOf is what r's /status says of the cluster.
func (f *fleet) statusOf(r *replica) cluster.Status {
	f.t.Helper()
	st, err := r.clusterStatus()
	if err != nil {
		f.t.Fatalf("%s: %v", r.name, err)
	}
	return st
}

// fullStatus is r's /status.
func (f *fleet) fullStatus(r *replica) scanner.Status {
	f.t.Helper()
	resp, err := http.Get(r.base + "/status")
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st scanner.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		f.t.Fatal(err)
	}
	return st
}

// waitPassed waits until r's /status shows a pass over every repository
// whose shard h says r holds.
func (f *fleet) waitPassed(r *replica, h map[int]string) {
	f.t.Helper()
	f.waitUntil(r.name+"'s passes over its shards", func() bool {
		seen := map[string]bool{}
		for _, rs := range f.fullStatus(r).Repositories {
			seen[rs.Name] = true
		}
		for _, name := range f.names {
			if h[cluster.Shard(name, shards)] == r.name && !seen[name] {
				return false
			}
		}
		return true
	})
}
