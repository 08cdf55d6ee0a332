package cluster

import (
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the cluster's Prometheus metrics, all named imagebutler_*. A
// nil *Metrics records nothing.
type Metrics struct {
	shardsHeld  prometheus.Gauge
	transitions *prometheus.CounterVec
	writes      *prometheus.CounterVec
	live        prometheus.Gauge
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		shardsHeld: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "imagebutler_shards_held", Help: "Shards this replica holds the Lease of.",
		}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagebutler_shard_transitions_total", Help: "Shard Leases this replica took (acquired), let go of (released) or found taken by another replica (lost).",
		}, []string{"change"}),
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagebutler_lease_writes_total", Help: "Lease creates and updates this replica sent, by result (ok, conflict, error).",
		}, []string{"result"}),
		live: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "imagebutler_replicas", Help: "Live replicas this replica sees, itself included.",
		}),
	}
	for _, c := range []string{"acquired", "released", "lost"} {
		m.transitions.WithLabelValues(c)
	}
	for _, r := range []string{"ok", "conflict", "error"} {
		m.writes.WithLabelValues(r)
	}
	reg.MustRegister(m.shardsHeld, m.transitions, m.writes, m.live)
	return m
}

func (m *Metrics) held(n int) {
	if m != nil {
		m.shardsHeld.Set(float64(n))
	}
}

func (m *Metrics) replicas(n int) {
	if m != nil {
		m.live.Set(float64(n))
	}
}

func (m *Metrics) transition(change string) {
	if m != nil {
		m.transitions.WithLabelValues(change).Inc()
	}
}

func (m *Metrics) write(err error) {
	if m == nil {
		return
	}
	switch {
	case err == nil:
		m.writes.WithLabelValues("ok").Inc()
	case apierrors.IsConflict(err), apierrors.IsAlreadyExists(err):
		m.writes.WithLabelValues("conflict").Inc()
	default:
		m.writes.WithLabelValues("error").Inc()
	}
}
