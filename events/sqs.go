package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/scanner"
)

// SQSAPI is the part of the SQS client a Queue uses.
type SQSAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
}

// Queue reads EventBridge "ECR Image Action" events from an SQS queue and
// triggers a targeted pass for every git repository that uses the pushed
// repository. A message is deleted once its passes finished without
// failing, or at once when there is nothing to do for it (an ECR
// repository no policy uses, another action, a message that is not such
// an event); a message whose pass failed is left for the queue's redrive.
type Queue struct {
	slots      chan struct{} // one per message being handled
	api        SQSAPI
	url        string
	account    string // of the queue, from its URL; "" when it names none
	target     Target
	dispatch   *Dispatcher
	visibility time.Duration
	metrics    *Metrics
	log        *slog.Logger
	relay      Relay // the other replicas of a cluster; nil outside one
}

// Relay hands an ECR push to the other replicas of a cluster, each of
// which runs the passes of the repositories it holds (cluster.Forwarder).
type Relay interface {
	Relay(ctx context.Context, push scanner.Push, since time.Time) error
}

// RelayTo has every push the queue brings also handed to r, and its
// message deleted only once r's passes finished too.
func (q *Queue) RelayTo(r Relay) { q.relay = r }

// NewSQS returns a Queue reading settings.QueueURL with the SDK's default
// credential chain (IRSA, Pod Identity, environment). The endpoint follows
// aws.endpoint (LocalStack, moto), else AWS_ENDPOINT_URL_SQS. A message
// stays invisible to other readers for visibility, which should exceed a
// pass: the longest repository timeout and the coalescing window.
func NewSQS(ctx context.Context, settings config.SQS, awsSettings config.AWS, target Target, d *Dispatcher, visibility time.Duration, m *Metrics, log *slog.Logger) (*Queue, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(settings.Region))
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration for SQS: %w", err)
	}
	cfg.Logger = scanner.SDKLogger(log)
	api := sqs.NewFromConfig(cfg, func(o *sqs.Options) {
		if awsSettings.Endpoint != "" {
			o.BaseEndpoint = aws.String(awsSettings.Endpoint)
		}
	})
	return newQueue(api, settings.QueueURL, target, d, visibility, m, log), nil
}

func newQueue(api SQSAPI, url string, target Target, d *Dispatcher, visibility time.Duration, m *Metrics, log *slog.Logger) *Queue {
	return &Queue{slots: make(chan struct{}, MaxMessagesInFlight), api: api, url: url, account: queueAccount(url), target: target, dispatch: d, visibility: visibility, metrics: m, log: log}
}

// MaxMessagesInFlight is how many messages a Queue handles at once: while
// that many wait for their passes, it receives no more (the queue keeps
// them), however fast messages arrive.
const MaxMessagesInFlight = 100

// queueAccount is the 12-digit account of a queue URL
// (https://sqs.<region>.amazonaws.com/<account>/<name>), or "".
func queueAccount(queueURL string) string {
	u, err := url.Parse(queueURL)
	if err != nil {
		return ""
	}
	account, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if len(account) != 12 || strings.Trim(account, "0123456789") != "" {
		return ""
	}
	return account
}

// maxVisibility is SQS's longest visibility timeout.
const maxVisibility = 12 * time.Hour

// Run long-polls the queue until ctx is done. Receive errors are logged and
// retried with a growing wait (1 s to 1 min); they never stop the poll.
func (q *Queue) Run(ctx context.Context) {
	visibility := int32(min(max(q.visibility, 30*time.Second), maxVisibility) / time.Second)
	wait := time.Second
	for ctx.Err() == nil {
		out, err := q.api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:            aws.String(q.url),
			MaxNumberOfMessages: 10,
			WaitTimeSeconds:     20,
			VisibilityTimeout:   visibility,
		})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			q.log.Warn("receiving from the SQS queue failed; trying again", "queue", q.url, "wait", wait, "err", err.Error())
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, time.Minute)
			continue
		}
		wait = time.Second
		for _, msg := range out.Messages {
			select {
			case q.slots <- struct{}{}:
			case <-ctx.Done():
				return // the messages not taken become visible again
			}
			go func() {
				defer func() { <-q.slots }()
				q.handle(ctx, msg)
			}()
		}
	}
}

// handle acts on one message and deletes it unless its pass failed.
func (q *Queue) handle(ctx context.Context, msg types.Message) {
	id := aws.ToString(msg.MessageId)
	rec := Record{Time: time.Now(), Source: SourceSQS}
	push, err := ParseECR([]byte(aws.ToString(msg.Body)), q.account)
	switch {
	case errors.Is(err, ErrNotPush):
		rec.Outcome, rec.Subject, rec.Detail = OutcomeIgnored, push.Ref.String(), err.Error()
	case err != nil:
		rec.Outcome, rec.Detail = OutcomeInvalid, err.Error()
		q.log.Warn("SQS message is not an ECR image event; deleted", "queue", q.url, "messageId", id, "err", err.Error())
	}
	if err != nil {
		q.delete(ctx, msg, rec)
		return
	}
	rec.Subject = push.Ref.String() + ":" + push.Tag
	users := q.target.Users(push.Ref)
	if len(users) == 0 && q.relay == nil {
		rec.Outcome, rec.Detail = OutcomeUnused, "no policy uses this ECR repository"
		q.delete(ctx, msg, rec)
		return
	}
	since := push.Time
	if since.IsZero() {
		since = rec.Time
	}
	done := make(chan error, 2)
	go func() { done <- q.dispatch.Await(ctx, users, []scanner.Push{push}, since) }()
	waits := 1
	if q.relay != nil {
		// The other replicas run the passes of the repositories they hold.
		waits++
		go func() { done <- q.relay.Relay(ctx, push, since) }()
	}
	var errs []error
	for range waits {
		if err := <-done; err != nil {
			errs = append(errs, err)
		}
	}
	if ctx.Err() != nil {
		return // left in the queue: it becomes visible again
	}
	if len(errs) > 0 {
		rec.Outcome, rec.Detail = OutcomeFailed, scanner.Clip(errors.Join(errs...).Error())
		q.metrics.record(rec)
		q.log.Warn("targeted pass failed; the SQS message is left for the queue's redrive", "queue", q.url, "messageId", id, "image", rec.Subject, "err", rec.Detail)
		return
	}
	rec.Outcome = OutcomeDone
	q.delete(ctx, msg, rec)
}

// delete removes msg from the queue and records rec.
func (q *Queue) delete(ctx context.Context, msg types.Message, rec Record) {
	if _, err := q.api.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.url), ReceiptHandle: msg.ReceiptHandle}); err != nil {
		q.log.Warn("deleting an SQS message failed; it will be received again", "queue", q.url, "messageId", aws.ToString(msg.MessageId), "err", err.Error())
	}
	q.metrics.record(rec)
}
