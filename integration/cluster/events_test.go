package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/imagebutler/imagebutler/cluster"
	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
)

// TestEventsForwarded: two replicas read one SQS queue and poll hourly. An
// ECR push event reaches one of them (SQS gives each message to one
// reader); the repositories it concerns are spread over both replicas'
// shards, so the one that read it runs the passes it holds and forwards the
// others, signed, to the replica that holds them. Every repository that
// follows the pushed ECR repository is updated long before the poll, once,
// and the message is deleted only after all its passes finished.
func TestEventsForwarded(t *testing.T) {
	needPeers(t)
	ctx := t.Context()
	q := sqs.New(sqs.Options{Region: testpeers.SeedRegion, Credentials: testpeers.Credentials, BaseEndpoint: aws.String(moto.Endpoint)})
	created, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(fmt.Sprintf("imagebutler-cluster-%d", time.Now().UnixNano())),
		Attributes: map[string]string{"VisibilityTimeout": "120"}})
	if err != nil {
		t.Fatal(err)
	}
	queueURL := aws.ToString(created.QueueUrl)
	key := filepath.Join(t.TempDir(), "cluster-key")
	b := make([]byte, 32)
	rand.Read(b)
	os.WriteFile(key, []byte(hex.EncodeToString(b)), 0o600)
	f := newFleet(t, fleetConfig{schedule: "@every 1h", extra: fmt.Sprintf("  secretFile: %q\nevents:\n  sqs: {queueURL: %q}\n  passesPerMinute: 60", key, queueURL)})
	a, b2 := f.start("replica-a"), f.start("replica-b")
	f.waitBalanced(a.name, b2.name)
	h, err := f.holders()
	if err != nil {
		t.Fatal(err)
	}
	// The repositories that follow app-0 are held by both replicas.
	holders := map[string]bool{}
	for i := range f.repos {
		if f.ecrOf[i] == 0 {
			holders[h[cluster.Shard(f.names[i], shards)]] = true
		}
	}
	if len(holders) != 2 {
		t.Fatalf("the repositories following app-0 are held by %v; the test needs both replicas", holders)
	}

	// Each replica has been over the repositories it holds (the passes of
	// a shard taken), so only the event can bring the new tag now.
	for _, r := range []*replica{a, b2} {
		f.waitPassed(r, h)
	}
	time.Sleep(1100 * time.Millisecond) // moto keeps whole seconds
	digest, err := testpeers.PushImage(ctx, moto.ECR(testpeers.SeedRegion), testpeers.SeedAccount, f.ecrRepo(0), "1.1.0")
	if err != nil {
		t.Fatal(err)
	}
	pushed := time.Now()
	body, _ := json.Marshal(map[string]any{
		"version": "0", "id": "push-1", "detail-type": "ECR Image Action", "source": "aws.ecr",
		"account": testpeers.SeedAccount, "time": time.Now().UTC().Format(time.RFC3339), "region": testpeers.SeedRegion, "resources": []string{},
		"detail": map[string]string{"result": "SUCCESS", "repository-name": f.ecrRepo(0), "image-digest": digest, "action-type": "PUSH", "image-tag": "1.1.0"},
	})
	if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(string(body))}); err != nil {
		t.Fatal(err)
	}
	f.waitUntil("the repositories following app-0 at 1.1.0", func() bool {
		for i := range f.repos {
			if f.ecrOf[i] == 0 && f.tagOf(i) != "1.1.0" {
				return false
			}
		}
		return true
	})
	t.Logf("1.1.0 in every repository that follows it, on both replicas, %s after the push (schedule @every 1h)", time.Since(pushed).Round(100*time.Millisecond))
	f.waitUntil("the message deleted", func() bool {
		out, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(queueURL),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
		if err != nil {
			return false
		}
		n := 0
		for _, v := range out.Attributes {
			i, _ := strconv.Atoi(v)
			n += i
		}
		return n == 0
	})
	relayed := 0
	for _, r := range []*replica{a, b2} {
		relayed += strings.Count(r.logs.String(), `"msg":"relayed push"`)
	}
	if relayed != 1 {
		t.Errorf("%d replicas were relayed the push, want 1 (the one that did not read the message)", relayed)
	}
	f.checkHistoriesOf(func(i int) []string {
		if f.ecrOf[i] == 0 {
			return []string{"1.1.0"}
		}
		return nil
	})
}
