package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/scanner"
)

// Delivery limits, per receiver.
const (
	// QueueLength is how many events wait for a receiver; more are dropped
	// (and counted) rather than held.
	QueueLength = 100
	// MaxAttempts is how often one event is tried: a 5xx, a 429 or no
	// answer is tried again with backoff (or after Retry-After), any other
	// 4xx is not.
	MaxAttempts = 8
	// RequestTimeout bounds one delivery attempt.
	RequestTimeout = 10 * time.Second
	// maxWait caps the wait between attempts, Retry-After included.
	maxWait = 10 * time.Minute
	// idsKept is how many event ids a receiver remembers as delivered.
	idsKept = 10_000
)

// Outcomes of imagebutler_notifications_total.
const (
	OutcomeSent      = "sent"      // delivered (2xx)
	OutcomeRetried   = "retried"   // an attempt failed and another follows
	OutcomeFailed    = "failed"    // given up: attempts used up, or refused (4xx)
	OutcomeDropped   = "dropped"   // the receiver's queue was full
	OutcomeDuplicate = "duplicate" // an id delivered (or queued) already
)

// Notifier delivers the events its Tracker finds to the receivers that
// want them, each receiver from a bounded queue of its own, in the
// background: Observe never blocks.
type Notifier struct {
	tracker   *Tracker
	receivers []*receiver
	total     *prometheus.CounterVec
	log       *slog.Logger
}

type receiver struct {
	cfg    config.Receiver
	queue  chan Event
	client *http.Client
	n      *Notifier
	// wait sleeps d, or less when ctx ends (false then); tests replace it.
	wait func(ctx context.Context, d time.Duration) bool

	mu    sync.Mutex
	known map[string]bool // ids queued or delivered
	order []string        // known's ids, oldest first
}

// New returns a Notifier of receivers for the repositories repos,
// registering imagebutler_notifications_total with reg.
func New(receivers []config.Receiver, repos []config.Repository, reg prometheus.Registerer, log *slog.Logger) *Notifier {
	n := &Notifier{
		tracker: NewTracker(repos),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagebutler_notifications_total",
			Help: "Notifications, by receiver, event (pushed, pull-request, held, failing, recovered) and outcome (sent, retried, failed, dropped, duplicate).",
		}, []string{"receiver", "event", "outcome"}),
		log: log,
	}
	if reg != nil {
		reg.MustRegister(n.total)
	}
	for _, c := range receivers {
		r := &receiver{cfg: c, queue: make(chan Event, QueueLength), client: &http.Client{Timeout: RequestTimeout},
			n: n, wait: sleep, known: map[string]bool{}}
		n.receivers = append(n.receivers, r)
		for _, e := range c.Events {
			for _, o := range []string{OutcomeSent, OutcomeFailed, OutcomeDropped} {
				n.total.WithLabelValues(c.Name, e, o)
			}
		}
	}
	return n
}

// Observe takes a repository's newest result (scanner.WithObserver) and
// queues its events for the receivers that want them.
func (n *Notifier) Observe(rs scanner.RepoStatus) {
	for _, e := range n.tracker.Observe(rs) {
		for _, r := range n.receivers {
			if r.wants(e) {
				r.enqueue(e)
			}
		}
	}
}

// Run delivers the queued events until ctx ends.
func (n *Notifier) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, r := range n.receivers {
		wg.Go(func() { r.run(ctx) })
	}
	wg.Wait()
}

// wants says whether the receiver takes e: its kind and repository, and
// for failures its own threshold (failing once, when the run of failed
// cycles reaches it; recovered only after such a run).
func (r *receiver) wants(e Event) bool {
	if !r.cfg.Wants(e.Kind, e.Repository) {
		return false
	}
	switch e.Kind {
	case Failing:
		return e.Failure.Cycles == r.cfg.FailingAfter
	case Recovered:
		return e.Failure.Cycles >= r.cfg.FailingAfter
	}
	return true
}

func (r *receiver) count(e Event, outcome string) {
	r.n.total.WithLabelValues(r.cfg.Name, e.Kind, outcome).Inc()
}

// enqueue queues e unless its id was queued or delivered already, or the
// queue is full.
func (r *receiver) enqueue(e Event) {
	r.mu.Lock()
	if r.known[e.ID] {
		r.mu.Unlock()
		r.count(e, OutcomeDuplicate)
		return
	}
	r.remember(e.ID)
	r.mu.Unlock()
	select {
	case r.queue <- e:
	default:
		r.forget(e.ID)
		r.count(e, OutcomeDropped)
		r.n.log.Warn("notification dropped: the receiver's queue is full", "receiver", r.cfg.Name, "event", e.Kind, "id", e.ID)
	}
}

// remember adds id to the known ids, forgetting the oldest past idsKept;
// r.mu is held.
func (r *receiver) remember(id string) {
	r.known[id] = true
	r.order = append(r.order, id)
	if len(r.order) > idsKept {
		delete(r.known, r.order[0])
		r.order = r.order[1:]
	}
}

// forget lets id be queued again (its delivery was given up).
func (r *receiver) forget(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.known, id)
}

func (r *receiver) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-r.queue:
			r.deliver(ctx, e)
		}
	}
}

// deliver tries e until it is delivered, refused, or MaxAttempts are used.
func (r *receiver) deliver(ctx context.Context, e Event) {
	for attempt := 1; ; attempt++ {
		retry, after, err := r.attempt(ctx, e)
		if err == nil {
			r.count(e, OutcomeSent)
			return
		}
		if !retry || attempt == MaxAttempts || ctx.Err() != nil {
			r.count(e, OutcomeFailed)
			r.forget(e.ID)
			r.n.log.Warn("notification not delivered", "receiver", r.cfg.Name, "event", e.Kind, "id", e.ID, "attempts", attempt, "err", err.Error())
			return
		}
		r.count(e, OutcomeRetried)
		if after <= 0 {
			after = time.Duration(1<<(attempt-1)) * time.Second
		}
		if !r.wait(ctx, min(after, maxWait)) {
			r.count(e, OutcomeFailed)
			return
		}
	}
}

// attempt posts e once. retry says whether another attempt may succeed;
// after is the wait the receiver asked for (Retry-After), or 0.
func (r *receiver) attempt(ctx context.Context, e Event) (retry bool, after time.Duration, err error) {
	raw, err := os.ReadFile(r.cfg.URLFile)
	if err != nil {
		return true, 0, fmt.Errorf("reading urlFile: %w", err)
	}
	url := string(bytes.TrimSpace(raw))
	var body []byte
	switch r.cfg.Type {
	case "slack":
		body, err = slackBody(e)
	case "teams":
		body, err = teamsBody(e)
	default:
		body, err = webhookBody(e)
	}
	if err != nil {
		return false, 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return false, 0, errors.New("urlFile does not hold a URL") // never the URL itself: it is a secret
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "imagebutler")
	if r.cfg.Type == "webhook" {
		req.Header.Set("X-Imagebutler-Event", e.Kind)
		req.Header.Set("X-Imagebutler-Delivery", e.ID)
		if r.cfg.SecretFile != "" {
			key, err := os.ReadFile(r.cfg.SecretFile)
			if err != nil {
				return true, 0, fmt.Errorf("reading secretFile: %w", err)
			}
			req.Header.Set(SignatureHeader, Sign(bytes.TrimSpace(key), body))
		}
	}
	resp, err := r.client.Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) {
			err = ue.Unwrap() // *url.Error names the URL, a secret
		}
		return true, 0, fmt.Errorf("posting: %w", err)
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode/100 == 2:
		return false, 0, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode/100 == 5:
		return true, retryAfter(resp.Header.Get("Retry-After")), fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return false, 0, fmt.Errorf("HTTP %d: refused", resp.StatusCode)
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, time.Until(t))
	}
	return 0
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// SignatureHeader carries the generic webhook's signature.
const SignatureHeader = "X-Imagebutler-Signature-256"

// Sign is the signature of body with key, as SignatureHeader carries it:
// "sha256=" and the hex HMAC-SHA256 of the body's bytes. A receiver
// computes the same over the bytes it received and compares in constant
// time (hmac.Equal).
func Sign(key, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}
