package scanner

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/gate"
)

// Metrics are the Prometheus metrics of the cycle and the ECR lister, all
// named imagebutler_*.
type Metrics struct {
	cycles        *prometheus.CounterVec
	cycleDuration prometheus.Histogram
	ecrRequests   *prometheus.CounterVec
	imagesListed  prometheus.Counter
	invalidTags   prometheus.Counter
	commits       *prometheus.CounterVec
	pushRetries   *prometheus.CounterVec
	policies      *prometheus.GaugeVec
	orphanMarkers prometheus.Gauge
	heldMarkers   *prometheus.GaugeVec
	lastSuccess   *prometheus.GaugeVec
	lastAttempt   *prometheus.GaugeVec
	failures      *prometheus.CounterVec
	pullRequests  *prometheus.CounterVec
	gated         *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		cycles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagebutler_cycles_total", Help: "Cycles run, by result (success: every repository succeeded; failure: one or more failed).",
		}, []string{"result"}),
		cycleDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "imagebutler_cycle_duration_seconds", Help: "How long a cycle took.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}),
		ecrRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagebutler_ecr_requests_total", Help: "ECR request attempts (each retry counts), by operation and outcome (ok, the AWS error code such as ThrottlingException, or timeout).",
		}, []string{"operation", "outcome"}),
		imagesListed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "imagebutler_ecr_images_listed_total", Help: "Tagged images listed from ECR.",
		}),
		invalidTags: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "imagebutler_ecr_invalid_tags_total", Help: "Tags and digests ECR listings returned that break ECR's rules, dropped.",
		}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagebutler_commits_total", Help: "Commits pushed, by repository.",
		}, []string{"repository"}),
		pushRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagebutler_push_retries_total", Help: "Pushes the remote rejected and the butler tried again, by repository.",
		}, []string{"repository"}),
		policies: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "imagebutler_policies", Help: "Policies in the last cycle, by state (resolved, no_tag, list_failed, conflict).",
		}, []string{"state"}),
		orphanMarkers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "imagebutler_markers_without_policy", Help: "Markers naming a policy that no annotation defines, in the last cycle.",
		}),
		heldMarkers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "imagebutler_markers_held", Help: "Markers that kept their value on purpose in the last cycle, by reason (hold: the hold annotation; downgrade: the choice ranks below the current value).",
		}, []string{"reason"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "imagebutler_last_success_timestamp_seconds", Help: "When each repository last finished a cycle without failing (Unix seconds; 0: not since the process started).",
		}, []string{"repository"}),
		lastAttempt: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "imagebutler_repository_last_attempt_timestamp_seconds", Help: "When each repository last finished a cycle, failed or not (Unix seconds; 0: not since the process started).",
		}, []string{"repository"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagebutler_repository_failures_total", Help: "Cycles in which a repository failed or partly failed, by repository.",
		}, []string{"repository"}),
		pullRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagebutler_pull_requests_total", Help: "Pull requests the butler opened or updated, and that it saw merged or closed without merging, by repository and event (opened, updated, merged, closed).",
		}, []string{"repository", "event"}),
		gated: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "imagebutler_candidates_gated", Help: "Candidates a gate refused in the last cycle (ranked above the choice), by gate (minAge, scan, signature).",
		}, []string{"gate"}),
	}
	for _, g := range []string{gate.MinAge, gate.Scan, gate.Signature} {
		m.gated.WithLabelValues(g)
	}
	reg.MustRegister(m.cycles, m.cycleDuration, m.ecrRequests, m.imagesListed, m.invalidTags, m.commits, m.pushRetries, m.policies, m.orphanMarkers, m.heldMarkers, m.lastSuccess, m.lastAttempt, m.failures, m.pullRequests, m.gated)
	return m
}

// addRepositories creates every per-repository series at zero, so that an
// alert on a repository that never succeeds has a series from the start.
func (m *Metrics) addRepositories(repos []config.Repository) {
	for _, r := range repos {
		name := r.Name()
		m.lastSuccess.WithLabelValues(name)
		m.lastAttempt.WithLabelValues(name)
		m.failures.WithLabelValues(name)
		m.commits.WithLabelValues(name)
		m.pushRetries.WithLabelValues(name)
		if r.PullRequest != nil {
			for _, e := range []string{"opened", "updated", "merged", "closed"} {
				m.pullRequests.WithLabelValues(name, e)
			}
		}
	}
}

// ecrRequest counts one ECR request attempt; nil Metrics count nothing.
func (m *Metrics) ecrRequest(operation, outcome string) {
	if m == nil {
		return
	}
	m.ecrRequests.WithLabelValues(operation, outcome).Inc()
}

// repository records one repository's result at now; nil Metrics record
// nothing.
func (m *Metrics) repository(now time.Time, r RepoResult) {
	if m == nil {
		return
	}
	m.lastAttempt.WithLabelValues(r.Repository).Set(float64(now.Unix()))
	if r.Err == nil {
		m.lastSuccess.WithLabelValues(r.Repository).Set(float64(now.Unix()))
	} else {
		m.failures.WithLabelValues(r.Repository).Inc()
	}
	if r.Commit != "" && r.Diff == "" && r.PullRequest == nil {
		m.commits.WithLabelValues(r.Repository).Inc()
	}
}
