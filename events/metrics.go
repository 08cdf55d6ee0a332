package events

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Sources and outcomes of events, as imagebutler_events_total and /status
// name them: a fixed set, whatever senders send.
const (
	SourceSQS     = "sqs"
	SourceWebhook = "webhook"

	OutcomeDone         = "done"         // its pass finished: pushed, or nothing to do (sqs: message deleted)
	OutcomeFailed       = "failed"       // its pass failed (sqs: message left for the queue's redrive)
	OutcomeUnused       = "unused"       // no policy uses the ECR repository (sqs: message deleted)
	OutcomeIgnored      = "ignored"      // understood, nothing to do: not a push of a tag, another branch, a ping
	OutcomeInvalid      = "invalid"      // not an event imagebutler understands (sqs: message deleted)
	OutcomeAccepted     = "accepted"     // webhook: a pass is due for the repository
	OutcomeUnauthorized = "unauthorized" // webhook: no or a wrong signature or token
	OutcomeTooLarge     = "too_large"    // webhook: body over 1 MiB
	OutcomeBusy         = "busy"         // webhook: too many deliveries at once (503)
	OutcomeDuplicate    = "duplicate"    // webhook: a delivery id handled in the last hour
)

// recentKept is how many events /status shows.
const recentKept = 20

// Record is one event as /status shows it: no body, only what identifies it.
type Record struct {
	Time    time.Time `json:"time"`
	Source  string    `json:"source"`
	Outcome string    `json:"outcome"`
	// Subject is the ECR repository and tag, or the git repository and
	// branch, when the event named them.
	Subject string `json:"subject,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// Metrics are the events' metrics and the recent events. A nil *Metrics
// records nothing.
type Metrics struct {
	total   *prometheus.CounterVec
	latency prometheus.Histogram

	mu     sync.Mutex
	recent []Record
}

// NewMetrics creates imagebutler_events_total and
// imagebutler_event_to_push_seconds and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagebutler_events_total", Help: "Events received, by source (sqs, webhook) and outcome (done, failed, unused, ignored, invalid, accepted, unauthorized, too_large, busy, duplicate).",
		}, []string{"source", "outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "imagebutler_event_to_push_seconds", Help: "From an event's time (an ECR push; a webhook's receipt) to the push of the commit it caused.",
			Buckets: []float64{0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300},
		}),
	}
	reg.MustRegister(m.total, m.latency)
	for _, s := range []string{SourceSQS, SourceWebhook} {
		for _, o := range []string{OutcomeDone, OutcomeFailed, OutcomeUnused, OutcomeIgnored, OutcomeInvalid, OutcomeAccepted, OutcomeUnauthorized, OutcomeTooLarge, OutcomeBusy, OutcomeDuplicate} {
			m.total.WithLabelValues(s, o)
		}
	}
	return m
}

// count counts an event without keeping it for /status: a delivery not
// known to come from the forge.
func (m *Metrics) count(r Record) {
	if m == nil {
		return
	}
	m.total.WithLabelValues(r.Source, r.Outcome).Inc()
}

// record counts an event and keeps it for /status.
func (m *Metrics) record(r Record) {
	if m == nil {
		return
	}
	m.total.WithLabelValues(r.Source, r.Outcome).Inc()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.recent) == recentKept {
		m.recent = append(m.recent[:0], m.recent[1:]...)
	}
	m.recent = append(m.recent, r)
}

func (m *Metrics) observeLatency(d time.Duration) {
	if m == nil {
		return
	}
	m.latency.Observe(d.Seconds())
}

// Recent returns the last events, oldest first.
func (m *Metrics) Recent() []Record {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Record(nil), m.recent...)
}
