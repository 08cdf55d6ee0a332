package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordclient "k8s.io/client-go/kubernetes/typed/coordination/v1"

	"github.com/imagebutler/imagebutler/config"
)

// Labels and annotations the butler puts on its Leases.
const (
	// LabelPrefix holds the cluster's lease prefix on each of its Leases:
	// a replica lists its cluster's Leases by it.
	LabelPrefix = "imagebutler.lilly.com/lease-prefix"
	// LabelKind is "shard" or "replica".
	LabelKind = "imagebutler.lilly.com/lease-kind"
	// AnnotationAddress, on a replica's Lease, is the URL other replicas
	// forward push events to.
	AnnotationAddress = "imagebutler.lilly.com/address"
)

// ErrNotHeld says this replica does not hold the shard of a repository.
var ErrNotHeld = errors.New("this replica does not hold the repository's shard")

// Member is one replica's part in the cluster: the shard Leases it holds,
// renewed every retry period, and its view of the live replicas.
type Member struct {
	leases  coordclient.LeaseInterface
	cfg     config.Cluster
	address string
	log     *slog.Logger
	metrics *Metrics
	// now is time.Now; its monotonic reading makes a frozen and resumed
	// process see how long it was gone.
	now func() time.Time
	// onAcquire is told of each shard this replica comes to hold.
	onAcquire func(shard int)

	mu       sync.Mutex
	cond     *sync.Cond // signalled when a pass on a shard ends
	held     map[int]*holding
	seen     map[string]seen // every Lease of the cluster, by name, as last listed
	replicas []string        // live replicas' identities, sorted, this one among them
	self     *coordv1.Lease  // this replica's own Lease as last written
	contact  time.Time       // when the API server last answered a tick in full
	listed   time.Time       // when the Leases were last listed
	lastErr  error           // the last tick's failure, nil once one succeeds
	draining bool            // stopping: no new passes, no new shards

	stop context.CancelFunc
	done chan struct{}
}

// holding is a shard this replica holds.
type holding struct {
	lease     *coordv1.Lease // as last written by this replica
	renewed   time.Time      // when that write succeeded
	busy      int            // passes running on the shard's repositories
	releasing bool           // let go of once busy is 0
}

// seen is a Lease as last listed, and when it was first seen in that
// version: a Lease whose version has not changed for its duration, by this
// replica's clock, has expired (client-go's rule; no clocks compared).
type seen struct {
	lease *coordv1.Lease
	since time.Time
}

// Option configures a Member.
type Option func(*Member)

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(m *Member) { m.now = now } }

// WithMetrics records the shards held, lease transitions and writes in mt.
func WithMetrics(mt *Metrics) Option { return func(m *Member) { m.metrics = mt } }

// OnAcquire has f told (in its own goroutine) of each shard this replica
// comes to hold, so that its repositories need not wait for the next poll.
func OnAcquire(f func(shard int)) Option { return func(m *Member) { m.onAcquire = f } }

// New returns the Member for cfg, whose Leases live in leases (the client
// of cfg.Namespace). address is where other replicas reach this one ("" for
// nowhere). It does nothing until Start.
func New(cfg config.Cluster, leases coordclient.LeaseInterface, address string, log *slog.Logger, opts ...Option) *Member {
	m := &Member{leases: leases, cfg: cfg, address: address, log: log, now: time.Now,
		held: map[int]*holding{}, seen: map[string]seen{}}
	m.cond = sync.NewCond(&m.mu)
	for _, o := range opts {
		o(m)
	}
	return m
}

// Shards is how many shards the repositories are spread over.
func (m *Member) Shards() int { return m.cfg.Shards }

// ShardOf returns the shard of the repository named repo.
func (m *Member) ShardOf(repo string) int { return Shard(repo, m.cfg.Shards) }

// ShardName is the name of shard n's Lease.
func (m *Member) ShardName(n int) string { return m.cfg.LeasePrefix + "-shard-" + strconv.Itoa(n) }

// replicaName is the name of this replica's own Lease: the prefix and a hash
// of the identity (which need not be a valid object name).
func (m *Member) replicaName() string {
	sum := sha256.Sum256([]byte(m.cfg.Identity))
	return m.cfg.LeasePrefix + "-replica-" + hex.EncodeToString(sum[:6])
}

// Start takes part in the cluster until Stop: a tick at once, then one every
// retry period (with up to 20% jitter, as client-go waits).
func (m *Member) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	m.stop, m.done = cancel, make(chan struct{})
	go func() {
		defer close(m.done)
		for {
			m.tick(ctx)
			d := time.Duration(m.cfg.RetryPeriod)
			d += rand.N(d/5 + 1)
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
	}()
}

// Begin starts a pass on the repository named repo: ok is false when this
// replica does not hold its shard (or is stopping, or is letting the shard
// go). end must be called when the pass is over; a shard is released only
// when no pass runs on it.
func (m *Member) Begin(repo string) (end func(), ok bool) {
	n := m.ShardOf(repo)
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.held[n]
	if h == nil || h.releasing || m.draining {
		return nil, false
	}
	h.busy++
	var once sync.Once
	return func() {
		once.Do(func() {
			m.mu.Lock()
			h.busy--
			m.mu.Unlock()
			m.cond.Broadcast()
		})
	}, true
}

// Fence says whether this replica may write to the repository named repo
// now: nil when it holds the shard and renewed its Lease within the renew
// deadline, else an error that says why not. It is asked right before every
// push and every forge call that changes something.
func (m *Member) Fence(repo string) error {
	n := m.ShardOf(repo)
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.held[n]
	if h == nil {
		return fmt.Errorf("shard %d (Lease %s/%s): %w; another replica writes to it", n, m.cfg.Namespace, m.ShardName(n), ErrNotHeld)
	}
	deadline := time.Duration(m.cfg.RenewDeadline)
	if age := m.now().Sub(h.renewed); age >= deadline {
		why := ""
		if m.lastErr != nil {
			why = fmt.Sprintf(" (the API server: %v)", m.lastErr)
		}
		return fmt.Errorf("shard %d (Lease %s/%s) was last renewed %s ago, past the renew deadline %s%s: not writing until it is renewed, since another replica may take it",
			n, m.cfg.Namespace, m.ShardName(n), age.Round(time.Millisecond), deadline, why)
	}
	return nil
}

// Stop leaves the cluster: no new pass begins, the running ones finish (or
// ctx ends), then every shard is released and this replica's own Lease
// deleted, so that the others take the shards on their next tick rather
// than a lease duration later.
func (m *Member) Stop(ctx context.Context) {
	m.mu.Lock()
	m.draining = true
	stopWaiting := context.AfterFunc(ctx, func() {
		m.mu.Lock()
		m.cond.Broadcast()
		m.mu.Unlock()
	})
	for ctx.Err() == nil && m.busy() {
		m.cond.Wait()
	}
	m.mu.Unlock()
	stopWaiting()
	if m.stop != nil {
		m.stop()
		<-m.done
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(m.cfg.RenewDeadline))
	defer cancel()
	m.mu.Lock()
	shards := slices.Sorted(maps.Keys(m.held))
	m.mu.Unlock()
	for _, n := range shards {
		m.release(rctx, n)
	}
	if err := m.leases.Delete(rctx, m.replicaName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		m.log.Warn("deleting this replica's Lease failed; the others count it live until it expires", "lease", m.replicaName(), "err", err.Error())
	}
	m.log.Info("left the cluster", "released", shards)
}

// busy says whether a pass runs on any shard held. m.mu is held.
func (m *Member) busy() bool {
	for _, h := range m.held {
		if h.busy > 0 {
			return true
		}
	}
	return false
}

// tick renews this replica's Lease and the shards it holds, lets go of the
// shards above its share and takes free ones up to it.
func (m *Member) tick(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(m.cfg.RenewDeadline))
	defer cancel()
	err := m.sync(ctx)
	m.mu.Lock()
	if err != nil && !errors.Is(err, context.Canceled) {
		if m.lastErr == nil {
			m.log.Warn("the API server did not answer; the shards held stay held for reading, and no push is made once the renew deadline has passed", "err", err.Error(), "renewDeadline", time.Duration(m.cfg.RenewDeadline))
		}
		m.lastErr = err
	} else if err == nil {
		if m.lastErr != nil {
			m.log.Info("the API server answers again")
		}
		m.lastErr = nil
		m.contact = m.now()
	}
	m.metrics.held(len(m.held))
	m.metrics.replicas(len(m.replicas))
	m.mu.Unlock()
}

// sync is one tick's work.
func (m *Member) sync(ctx context.Context) error {
	if err := m.renewSelf(ctx); err != nil {
		return err
	}
	list, err := m.leases.List(ctx, metav1.ListOptions{LabelSelector: LabelPrefix + "=" + m.cfg.LeasePrefix})
	if err != nil {
		return fmt.Errorf("listing the Leases in %s: %w", m.cfg.Namespace, err)
	}
	now := m.now()
	m.mu.Lock()
	// A replica that could not look for a while (the API server down, the
	// process frozen) saw no renewal in that time: it starts its clocks
	// again rather than take every Lease for expired.
	blind := now.Sub(m.listed) > time.Duration(m.cfg.LeaseDuration)/2
	m.listed = now
	names := map[string]bool{}
	live := []string{m.cfg.Identity}
	for i := range list.Items {
		l := &list.Items[i]
		names[l.Name] = true
		if s, ok := m.seen[l.Name]; !ok || blind || s.lease.ResourceVersion != l.ResourceVersion {
			m.seen[l.Name] = seen{lease: l, since: now}
		}
		if l.Labels[LabelKind] == "replica" && l.Name != m.replicaName() && !m.expired(l.Name, now) {
			live = append(live, holder(l))
		}
	}
	for name := range m.seen {
		if !names[name] {
			delete(m.seen, name)
		}
	}
	sort.Strings(live)
	live = slices.Compact(live)
	m.replicas = live
	share := Share(m.cfg.Shards, len(live), slices.Index(live, m.cfg.Identity))
	if m.draining {
		share = len(m.held) // neither take nor let go: Stop releases
	}
	// Shards taken by another replica since the last tick are lost.
	for n, h := range m.held {
		s, ok := m.seen[m.ShardName(n)]
		if ok && holder(s.lease) != m.cfg.Identity {
			m.log.Warn("another replica took a shard this replica held", "shard", n, "holder", holder(s.lease))
			m.metrics.transition("lost")
			delete(m.held, n)
			continue
		}
		if ok && s.lease.ResourceVersion != h.lease.ResourceVersion {
			h.lease = s.lease // written by this replica in a tick whose answer was lost
		}
	}
	// Above the share: the highest shards go, once no pass runs on them.
	kept := 0
	for _, n := range slices.Sorted(maps.Keys(m.held)) {
		if h := m.held[n]; !h.releasing {
			kept++
			if kept > share {
				h.releasing = true
				m.log.Info("letting a shard go to even out the replicas", "shard", n, "replicas", len(live), "share", share)
			}
		}
	}
	var renew, release []int
	for n, h := range m.held {
		if h.releasing && h.busy == 0 {
			release = append(release, n)
		} else {
			renew = append(renew, n)
		}
	}
	// Free shards, looked at from this replica's place among the replicas
	// on, so that replicas short of their share try different ones first.
	want := share - kept
	var free []int
	if want > 0 {
		start := m.cfg.Shards * slices.Index(live, m.cfg.Identity) / len(live)
		for i := range m.cfg.Shards {
			n := (start + i) % m.cfg.Shards
			if m.held[n] != nil {
				continue
			}
			if s, ok := m.seen[m.ShardName(n)]; !ok || holder(s.lease) == "" || m.expired(m.ShardName(n), now) {
				free = append(free, n)
			}
		}
	}
	m.mu.Unlock()

	for _, n := range renew {
		if err := m.renew(ctx, n); err != nil {
			return err
		}
	}
	for _, n := range release {
		m.release(ctx, n)
	}
	for _, n := range free {
		if want == 0 {
			break
		}
		if m.acquire(ctx, n) { // else another replica took it first: try the next
			want--
		}
	}
	return ctx.Err()
}

// expired says whether the Lease named name has not changed for its
// duration since this replica first saw it as it is. m.mu is held.
func (m *Member) expired(name string, now time.Time) bool {
	s, ok := m.seen[name]
	if !ok {
		return true
	}
	d := time.Second
	if p := s.lease.Spec.LeaseDurationSeconds; p != nil {
		d = time.Duration(*p) * time.Second
	}
	return now.Sub(s.since) >= d
}

// holder is the Lease's holder identity, "" when none.
func holder(l *coordv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// leaseSpec fills l's spec as this replica's, renewed now.
func (m *Member) stamp(l *coordv1.Lease, now time.Time, acquired bool) {
	id := m.cfg.Identity
	secs := int32(time.Duration(m.cfg.LeaseDuration) / time.Second)
	t := metav1.NewMicroTime(now)
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = &id, &secs, &t
	if acquired {
		l.Spec.AcquireTime = &t
		n := int32(0)
		if l.Spec.LeaseTransitions != nil {
			n = *l.Spec.LeaseTransitions + 1
		}
		l.Spec.LeaseTransitions = &n
	}
}

// newLease is a Lease of the cluster named name, of kind kind.
func (m *Member) newLease(name, kind string) *coordv1.Lease {
	return &coordv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: m.cfg.Namespace,
		Labels: map[string]string{LabelPrefix: m.cfg.LeasePrefix, LabelKind: kind, "app.kubernetes.io/managed-by": "imagebutler"}}}
}

// renewSelf writes this replica's own Lease: it is alive.
func (m *Member) renewSelf(ctx context.Context) error {
	now := m.now()
	m.mu.Lock()
	l := m.self
	m.mu.Unlock()
	var err error
	if l == nil {
		l, err = m.leases.Get(ctx, m.replicaName(), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			l = m.newLease(m.replicaName(), "replica")
			m.stamp(l, now, true)
			if m.address != "" {
				l.Annotations = map[string]string{AnnotationAddress: m.address}
			}
			l, err = m.leases.Create(ctx, l, metav1.CreateOptions{})
			m.metrics.write(err)
			if err != nil {
				return fmt.Errorf("creating this replica's Lease %s/%s: %w", m.cfg.Namespace, m.replicaName(), err)
			}
			m.mu.Lock()
			m.self = l
			m.mu.Unlock()
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading this replica's Lease %s/%s: %w", m.cfg.Namespace, m.replicaName(), err)
		}
	}
	l = l.DeepCopy()
	m.stamp(l, now, false)
	if m.address != "" {
		if l.Annotations == nil {
			l.Annotations = map[string]string{}
		}
		l.Annotations[AnnotationAddress] = m.address
	}
	got, err := m.leases.Update(ctx, l, metav1.UpdateOptions{})
	m.metrics.write(err)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.self = nil // read it again next tick
		return fmt.Errorf("renewing this replica's Lease %s/%s: %w", m.cfg.Namespace, m.replicaName(), err)
	}
	m.self = got
	return nil
}

// renew writes shard n's Lease again. A conflict means another replica
// wrote it: the next tick's listing says whether it is lost.
func (m *Member) renew(ctx context.Context, n int) error {
	m.mu.Lock()
	h := m.held[n]
	if h == nil {
		m.mu.Unlock()
		return nil
	}
	l := h.lease.DeepCopy()
	m.mu.Unlock()
	now := m.now()
	m.stamp(l, now, false)
	got, err := m.leases.Update(ctx, l, metav1.UpdateOptions{})
	m.metrics.write(err)
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		m.mu.Lock()
		if h := m.held[n]; h != nil {
			m.log.Warn("another replica wrote a shard's Lease; this replica stops writing to its repositories", "shard", n, "err", err.Error())
			m.metrics.transition("lost")
			delete(m.held, n)
		}
		m.mu.Unlock()
		return nil
	}
	if err != nil {
		return fmt.Errorf("renewing Lease %s/%s: %w", m.cfg.Namespace, m.ShardName(n), err)
	}
	m.mu.Lock()
	if h := m.held[n]; h != nil {
		h.lease, h.renewed = got, now
	}
	m.mu.Unlock()
	return nil
}

// acquire takes shard n, whose Lease is free, missing or expired: a
// create, or an update of the version this replica listed (so that of two
// replicas taking it, one wins).
func (m *Member) acquire(ctx context.Context, n int) bool {
	name := m.ShardName(n)
	m.mu.Lock()
	s, ok := m.seen[name]
	m.mu.Unlock()
	now := m.now()
	var (
		got *coordv1.Lease
		err error
		was string
	)
	if !ok {
		l := m.newLease(name, "shard")
		m.stamp(l, now, true)
		got, err = m.leases.Create(ctx, l, metav1.CreateOptions{})
	} else {
		was = holder(s.lease)
		l := s.lease.DeepCopy()
		m.stamp(l, now, true)
		got, err = m.leases.Update(ctx, l, metav1.UpdateOptions{})
	}
	m.metrics.write(err)
	if err != nil {
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
			m.log.Warn("taking a shard failed", "shard", n, "err", err.Error())
		}
		return false
	}
	m.mu.Lock()
	m.held[n] = &holding{lease: got, renewed: now}
	m.seen[name] = seen{lease: got, since: now}
	m.mu.Unlock()
	m.metrics.transition("acquired")
	m.log.Info("took a shard", "shard", n, "lease", name, "previousHolder", was)
	if m.onAcquire != nil {
		go m.onAcquire(n)
	}
	return true
}

// release lets go of shard n: its Lease keeps no holder, so that another
// replica may take it at once.
func (m *Member) release(ctx context.Context, n int) {
	m.mu.Lock()
	h := m.held[n]
	if h == nil {
		m.mu.Unlock()
		return
	}
	delete(m.held, n)
	l := h.lease.DeepCopy()
	m.mu.Unlock()
	l.Spec.HolderIdentity, l.Spec.RenewTime = nil, nil
	_, err := m.leases.Update(ctx, l, metav1.UpdateOptions{})
	m.metrics.write(err)
	m.metrics.transition("released")
	if err != nil {
		m.log.Warn("releasing a shard failed; another replica takes it once its Lease expires", "shard", n, "err", err.Error())
		return
	}
	m.log.Info("released a shard", "shard", n)
}

// Holder names the replica that holds the shard of the repository named
// repo as this replica last listed the Leases, and the address it gave for
// forwarded passes; ok is false when no live replica holds it (or gave no
// address).
func (m *Member) Holder(repo string) (identity, address string, ok bool) {
	n := m.ShardOf(repo)
	m.mu.Lock()
	defer m.mu.Unlock()
	s, found := m.seen[m.ShardName(n)]
	if !found || holder(s.lease) == "" || m.expired(s.lease.Name, m.now()) {
		return "", "", false
	}
	identity = holder(s.lease)
	for _, r := range m.seen {
		if r.lease.Labels[LabelKind] == "replica" && holder(r.lease) == identity {
			address = strings.TrimSuffix(r.lease.Annotations[AnnotationAddress], "/")
		}
	}
	return identity, address, address != ""
}

// Holds says whether this replica holds the shard of the repository named
// repo (and is not letting it go).
func (m *Member) Holds(repo string) bool {
	n := m.ShardOf(repo)
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.held[n]
	return h != nil && !h.releasing && !m.draining
}

// Peer is another live replica.
type Peer struct {
	Identity string
	Address  string // where it takes forwarded passes and relayed pushes
}

// Peers are the other live replicas that gave an address, as last listed.
func (m *Member) Peers() []Peer {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	var ps []Peer
	for name, s := range m.seen {
		if s.lease.Labels[LabelKind] != "replica" || name == m.replicaName() || m.expired(name, now) {
			continue
		}
		if addr := s.lease.Annotations[AnnotationAddress]; addr != "" && holder(s.lease) != "" {
			ps = append(ps, Peer{Identity: holder(s.lease), Address: strings.TrimSuffix(addr, "/")})
		}
	}
	return ps
}
