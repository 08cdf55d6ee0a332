package events

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go/logging"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/policy"
)

// fakeSQS hands out its messages once, then long-polls empty, and records
// deletions.
type fakeSQS struct {
	mu      sync.Mutex
	pending []types.Message
	deleted map[string]bool
}

func (f *fakeSQS) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	f.mu.Lock()
	msgs := f.pending
	f.pending = nil
	f.mu.Unlock()
	if len(msgs) == 0 {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return &sqs.ReceiveMessageOutput{Messages: msgs}, nil
}

func (f *fakeSQS) DeleteMessage(_ context.Context, in *sqs.DeleteMessageInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted[aws.ToString(in.ReceiptHandle)] = true
	return &sqs.DeleteMessageOutput{}, nil
}

func message(t *testing.T, handle, file string) types.Message {
	body, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return types.Message{MessageId: aws.String(handle), ReceiptHandle: aws.String(handle), Body: aws.String(string(body))}
}

func TestQueue(t *testing.T) {
	bartender := policy.ImageRef{Account: "283234040926", Region: "us-east-2", Repository: "lrl_falcon_bartender"}
	tests := map[string]struct {
		file    string
		users   []string
		fail    bool
		deleted bool
		outcome string
		passes  int
	}{
		"used push":   {"testdata/push.json", []string{"apps", "infra"}, false, true, OutcomeDone, 2},
		"unused push": {"testdata/push.json", nil, false, true, OutcomeUnused, 0},
		"pass fails":  {"testdata/push.json", []string{"apps"}, true, false, OutcomeFailed, 1},
		"delete":      {"testdata/delete.json", []string{"apps"}, false, true, OutcomeIgnored, 0},
		"poison":      {"testdata/not-json.txt", []string{"apps"}, false, true, OutcomeInvalid, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := &fakeTarget{users: map[policy.ImageRef][]string{bartender: tc.users}}
			if tc.fail {
				f.fail = errors.New("git remote down")
			}
			api := &fakeSQS{pending: []types.Message{message(t, "m1", tc.file)}, deleted: map[string]bool{}}
			m := NewMetrics(prometheus.NewRegistry())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			d := NewDispatcher(ctx, f, 10*time.Millisecond, 60, 4, m, quiet)
			q := newQueue(api, "https://sqs.us-east-2.amazonaws.com/283234040926/imagebutler", f, d, time.Minute, m, quiet)
			go q.Run(ctx)
			for deadline := time.Now().Add(time.Minute); testutil.ToFloat64(m.total.WithLabelValues(SourceSQS, tc.outcome)) == 0; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("no %s event within a minute; recent %+v", tc.outcome, m.Recent())
				}
			}
			api.mu.Lock()
			deleted := api.deleted["m1"]
			api.mu.Unlock()
			if deleted != tc.deleted {
				t.Errorf("deleted = %v, want %v", deleted, tc.deleted)
			}
			if n := f.count(); n != tc.passes {
				t.Errorf("%d passes, want %d", n, tc.passes)
			}
		})
	}
}

// endlessSQS answers every receive with ten new messages of body.
type endlessSQS struct {
	body string
	n    atomic.Int64
}

func (f *endlessSQS) ReceiveMessage(ctx context.Context, _ *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var msgs []types.Message
	for range 10 {
		id := aws.String(fmt.Sprint(f.n.Add(1)))
		msgs = append(msgs, types.Message{MessageId: id, ReceiptHandle: id, Body: aws.String(f.body)})
	}
	return &sqs.ReceiveMessageOutput{Messages: msgs}, nil
}

func (f *endlessSQS) DeleteMessage(context.Context, *sqs.DeleteMessageInput, ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error) {
	return &sqs.DeleteMessageOutput{}, nil
}

// A queue that never runs dry while passes hang: the consumer stops
// receiving at MaxMessagesInFlight messages, instead of a goroutine per
// message without end.
func TestQueueBoundsMessagesInFlight(t *testing.T) {
	bartender := policy.ImageRef{Account: "283234040926", Region: "us-east-2", Repository: "lrl_falcon_bartender"}
	hold := make(chan struct{})
	f := &fakeTarget{users: map[policy.ImageRef][]string{bartender: {"apps"}}, hold: hold}
	body, err := os.ReadFile("testdata/push.json")
	if err != nil {
		t.Fatal(err)
	}
	api := &endlessSQS{body: string(body)}
	m := NewMetrics(prometheus.NewRegistry())
	ctx, cancel := context.WithCancel(context.Background())
	d := NewDispatcher(ctx, f, time.Millisecond, 60, 1, m, quiet)
	q := newQueue(api, "https://sqs.us-east-2.amazonaws.com/283234040926/q", f, d, time.Minute, m, quiet)
	done := make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	for deadline := time.Now().Add(time.Minute); len(q.slots) < MaxMessagesInFlight && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	received := api.n.Load()
	time.Sleep(200 * time.Millisecond) // room for receives that must not happen
	if got := api.n.Load(); got != received || got > MaxMessagesInFlight+10 {
		t.Errorf("received %d messages, then %d, with %d passes hanging; want no more than %d", received, got, MaxMessagesInFlight, MaxMessagesInFlight+10)
	}
	close(hold)
	cancel()
	<-done
}

// The SDK's own warnings about SQS calls go through the service's logger.
func TestSQSLogsGoToSlog(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "x")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "y")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	var buf bytes.Buffer
	q, err := NewSQS(context.Background(), config.SQS{QueueURL: "https://sqs.us-east-2.amazonaws.com/123456789012/q", Region: "us-east-2"},
		config.AWS{}, nil, nil, time.Minute, nil, slog.New(slog.NewJSONHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	q.api.(*sqs.Client).Options().Logger.Logf(logging.Warn, "Response has no supported checksum. Not validating response payload.")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil || line["level"] != "WARN" || line["msg"] != "AWS SDK: Response has no supported checksum. Not validating response payload." {
		t.Errorf("SDK log line = %q (%v)", buf.String(), err)
	}
}
