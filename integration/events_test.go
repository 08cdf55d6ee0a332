package integration

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
)

// motoAccount is moto's own account. Its EventBridge leaves the account out
// of the events it delivers, and imagebutler takes the queue's account for
// them, so the ECR repositories of these tests live there.
const motoAccount = "123456789012"

var eventRuns atomic.Int32

// eventsEnv is a git repository watched by `imagebutler run` with
// events.sqs on a queue made by deploy/events/setup.sh.
type eventsEnv struct {
	*env
	repo     string // ECR repository
	queueURL string
	rule     string
	base     string // imagebutler's HTTP address
	cmd      *exec.Cmd
	logs     *bytes.Buffer
}

// awsCLI runs the aws CLI against moto and returns its text output.
func awsCLI(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command("aws", append([]string{"--endpoint-url", moto.Endpoint, "--output", "text"}, args...)...)
	cmd.Env = append(os.Environ(), "AWS_DEFAULT_REGION="+testpeers.SeedRegion)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// setupEvents makes the ECR repository, the queue and rule (with the
// shipped script), the git repository at the first tag, and starts `run`
// with an hourly schedule: only events can move the marker after the
// first cycle.
func setupEvents(t testing.TB, extraConfig string) *eventsEnv {
	t.Helper()
	needPeers(t)
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("deploy/events/setup.sh needs the aws CLI")
	}
	run := eventRuns.Add(1)
	ev := &eventsEnv{repo: fmt.Sprintf("lrl_falcon_events_%d", run)}
	ctx := t.Context()
	c := moto.ECR(testpeers.SeedRegion)
	if err := testpeers.CreateRepository(ctx, c, motoAccount, ev.repo); err != nil {
		t.Fatal(err)
	}
	ev.push(t, "qa-sha-0000001")
	deployment := strings.NewReplacer(testpeers.SeedAccount, motoAccount, testpeers.SeedRepository, ev.repo).Replace(testpeers.SeedDeployment)
	ev.env = setupRepo(t, "events", deployment)

	queue := fmt.Sprintf("imagebutler-events-%d", run)
	ev.rule = fmt.Sprintf("imagebutler-push-%d", run)
	setup := exec.Command("bash", "../deploy/events/setup.sh", queue, ev.rule)
	setup.Env = append(os.Environ(), "ENDPOINT="+moto.Endpoint)
	out, err := setup.Output()
	if err != nil {
		t.Fatalf("deploy/events/setup.sh: %v\n%s", err, out)
	}
	ev.queueURL = strings.TrimSpace(string(out))
	t.Cleanup(func() {
		awsCLI(t, "events", "remove-targets", "--rule", ev.rule, "--ids", "imagebutler-queue")
		awsCLI(t, "events", "delete-rule", "--name", ev.rule)
	})

	ev.start(t, fmt.Sprintf("events:\n  sqs: {queueURL: %q}\n  passesPerMinute: 60\n%s", ev.queueURL, extraConfig))
	waitFor(t, "first commit", func() bool { return strings.HasSuffix(markerOnMain(t, ev.env), "qa-sha-0000001") })
	return ev
}

// start starts `imagebutler run` on ev's config with an hourly schedule,
// an HTTP address and extraConfig, and waits until it is ready (its first
// cycle done).
func (ev *eventsEnv) start(t testing.TB, extraConfig string) {
	t.Helper()
	port := freePort(t)
	ev.base = fmt.Sprintf("http://127.0.0.1:%d", port)
	cfg, _ := os.ReadFile(ev.config)
	cfg = []byte(strings.Replace(string(cfg), `listen: ""`, fmt.Sprintf("listen: \"127.0.0.1:%d\"\nschedule: \"@every 1h\"\n%s", port, extraConfig), 1))
	os.WriteFile(ev.config, cfg, 0o644)
	ev.cmd = exec.Command(binary, "run", "--config", ev.config, "--grace", "10s")
	ev.logs = &bytes.Buffer{}
	ev.cmd.Stdout, ev.cmd.Stderr = ev.logs, ev.logs
	if err := ev.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ev.cmd.Process.Signal(syscall.SIGTERM)
		ev.cmd.Wait()
		if t.Failed() {
			t.Logf("imagebutler run logs:\n%s", ev.logs.String())
		}
	})
	waitFor(t, "readyz", func() bool { return get(ev.base+"/readyz") == 200 })
}

// push puts an image tagged tag into the ECR repository and returns its digest.
func (ev *eventsEnv) push(t testing.TB, tag string) string {
	t.Helper()
	d, err := testpeers.PushImage(t.Context(), moto.ECR(testpeers.SeedRegion), motoAccount, ev.repo, tag)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// announce sends ECR's "ECR Image Action" events for tags through
// EventBridge (PutEvents, ten at a time, back to back, as ECR sends the
// events of a multi-arch push): moto accepts the aws.ecr source and
// delivers them to the queue through the rule and target setup.sh made.
func (ev *eventsEnv) announce(t testing.TB, digests map[string]string, tags ...string) {
	t.Helper()
	c := eventbridge.New(eventbridge.Options{Region: testpeers.SeedRegion, Credentials: testpeers.Credentials, BaseEndpoint: aws.String(moto.Endpoint)})
	for chunk := range slices.Chunk(tags, 10) {
		var entries []ebtypes.PutEventsRequestEntry
		for _, tag := range chunk {
			detail, _ := json.Marshal(map[string]string{
				"result": "SUCCESS", "repository-name": ev.repo, "image-digest": digests[tag], "action-type": "PUSH", "image-tag": tag,
			})
			entries = append(entries, ebtypes.PutEventsRequestEntry{Source: aws.String("aws.ecr"), DetailType: aws.String("ECR Image Action"), Detail: aws.String(string(detail))})
		}
		out, err := c.PutEvents(t.Context(), &eventbridge.PutEventsInput{Entries: entries})
		if err != nil {
			t.Fatal(err)
		}
		if out.FailedEntryCount != 0 {
			t.Fatalf("PutEvents: %d entries failed", out.FailedEntryCount)
		}
	}
}

// enqueue sends the events EventBridge would deliver for tags straight to
// the queue, ten to a batch. moto's EventBridge takes about 0.2 s per event,
// so a burst through it spreads over seconds, longer than the coalescing
// window; ECR sends the events of one push (a multi-arch image's manifests)
// within the same moment, as this does.
func (ev *eventsEnv) enqueue(t testing.TB, digests map[string]string, tags ...string) {
	t.Helper()
	c := sqs.New(sqs.Options{Region: testpeers.SeedRegion, Credentials: testpeers.Credentials, BaseEndpoint: aws.String(moto.Endpoint)})
	for chunk := range slices.Chunk(tags, 10) {
		var entries []sqstypes.SendMessageBatchRequestEntry
		for i, tag := range chunk {
			body, _ := json.Marshal(map[string]any{
				"version": "0", "id": fmt.Sprintf("burst-%d", i), "detail-type": "ECR Image Action", "source": "aws.ecr",
				"account": motoAccount, "time": time.Now().UTC().Format(time.RFC3339), "region": testpeers.SeedRegion, "resources": []string{},
				"detail": map[string]string{"result": "SUCCESS", "repository-name": ev.repo, "image-digest": digests[tag], "action-type": "PUSH", "image-tag": tag},
			})
			entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(string(body))})
		}
		out, err := c.SendMessageBatch(t.Context(), &sqs.SendMessageBatchInput{QueueUrl: aws.String(ev.queueURL), Entries: entries})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Failed) != 0 {
			t.Fatalf("SendMessageBatch: %d entries failed", len(out.Failed))
		}
	}
}

// queued is how many messages the queue holds, visible or in flight.
func (ev *eventsEnv) queued(t testing.TB) int {
	c := sqs.New(sqs.Options{Region: testpeers.SeedRegion, Credentials: testpeers.Credentials, BaseEndpoint: aws.String(moto.Endpoint)})
	out, err := c.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(ev.queueURL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range out.Attributes {
		i, _ := strconv.Atoi(v)
		n += i
	}
	return n
}

// metric is the value of the series named exactly series on /metrics, or -1.
func (ev *eventsEnv) metric(t testing.TB, series string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(body(t, ev.base+"/metrics"))
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func (ev *eventsEnv) commits(t testing.TB) int {
	out, err := testpeers.Git(ev.bareDir(), "rev-list", "--count", "main")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(out))
	return n
}

// An ECR push announced through EventBridge and SQS becomes a pushed commit
// long before the hourly poll; the message is gone afterwards; 20 pushes at
// once are one commit; a message that is not an event is deleted and
// counted; a pass that fails (git remote down) leaves its message.
func TestPushEventsThroughSQS(t *testing.T) {
	ev := setupEvents(t, "")
	describesBefore := ev.metric(t, `imagebutler_ecr_requests_total{operation="DescribeImages",outcome="ok"}`)

	// One push.
	time.Sleep(1100 * time.Millisecond)
	digests := map[string]string{"qa-sha-0000002": ev.push(t, "qa-sha-0000002")}
	pushed := time.Now()
	ev.announce(t, digests, "qa-sha-0000002")
	waitFor(t, "commit of the announced tag", func() bool { return strings.HasSuffix(markerOnMain(t, ev.env), "qa-sha-0000002") })
	t.Logf("announced tag committed %s after the push (schedule @every 1h)", time.Since(pushed).Round(100*time.Millisecond))
	waitFor(t, "the message deleted", func() bool { return ev.queued(t) == 0 })
	// The event is recorded just after its message is deleted: on a loaded
	// machine the queue can be seen empty first.
	waitFor(t, "the event recorded", func() bool {
		return ev.metric(t, `imagebutler_events_total{outcome="done",source="sqs"}`) >= 1
	})
	if v := ev.metric(t, `imagebutler_events_total{outcome="done",source="sqs"}`); v != 1 {
		t.Errorf("events_total{done} = %v, want 1", v)
	}
	// The pass looked up the pushed image alone: one DescribeImages call
	// (moto does not paginate, so a full listing would be one call too; the
	// scanner's unit test counts listings).
	if v := ev.metric(t, `imagebutler_ecr_requests_total{operation="DescribeImages",outcome="ok"}`); v != describesBefore+1 {
		t.Errorf("DescribeImages calls for the event = %v, want 1", v-describesBefore)
	}
	if v := ev.metric(t, "imagebutler_event_to_push_seconds_count"); v != 1 {
		t.Errorf("event_to_push_seconds_count = %v, want 1", v)
	}
	var st struct {
		Events []struct{ Source, Outcome, Subject string }
	}
	getJSON(t, ev.base+"/status", &st)
	if len(st.Events) != 1 || st.Events[0].Outcome != "done" || !strings.Contains(st.Events[0].Subject, ev.repo+" in us-east-2:qa-sha-0000002") {
		t.Errorf("/status events = %+v", st.Events)
	}

	// A burst of 20 pushes: one commit.
	before := ev.commits(t)
	time.Sleep(1100 * time.Millisecond)
	var burst []string
	for i := range 20 {
		tag := fmt.Sprintf("qa-sha-00001%02d", i)
		digests[tag] = ev.push(t, tag)
		burst = append(burst, tag)
	}
	ev.enqueue(t, digests, burst...)
	waitFor(t, "the burst handled", func() bool {
		return ev.metric(t, `imagebutler_events_total{outcome="done",source="sqs"}`) == 21
	})
	if n := ev.commits(t) - before; n != 1 {
		t.Errorf("%d commits for a burst of 20 pushes, want 1", n)
	}
	if v := markerOnMain(t, ev.env); !strings.Contains(v, ":qa-sha-00001") {
		t.Errorf("marker after the burst = %s", v)
	}
	waitFor(t, "the burst's messages deleted", func() bool { return ev.queued(t) == 0 })

	// A message that is no event: deleted, counted.
	c := sqs.New(sqs.Options{Region: testpeers.SeedRegion, Credentials: testpeers.Credentials, BaseEndpoint: aws.String(moto.Endpoint)})
	if _, err := c.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(ev.queueURL), MessageBody: aws.String("not an event, secret=hunter2")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the poison message counted", func() bool {
		return ev.metric(t, `imagebutler_events_total{outcome="invalid",source="sqs"}`) == 1
	})
	waitFor(t, "the poison message deleted", func() bool { return ev.queued(t) == 0 })
	if strings.Contains(ev.logs.String(), "hunter2") {
		t.Error("the log holds the poison message's body")
	}

	// The git remote is down: the pass fails and the message stays for the
	// queue's redrive.
	ev.git.Close()
	time.Sleep(1100 * time.Millisecond)
	digests["qa-sha-0000300"] = ev.push(t, "qa-sha-0000300")
	ev.announce(t, digests, "qa-sha-0000300")
	waitFor(t, "the failed pass counted", func() bool {
		return ev.metric(t, `imagebutler_events_total{outcome="failed",source="sqs"}`) >= 1
	})
	if n := ev.queued(t); n != 1 {
		t.Errorf("%d messages in the queue after a failed pass, want 1 (left for redrive)", n)
	}
}

// setup.sh made what the README says: the rule has the shipped pattern and
// the queue as its target, the queue lets only that rule send, and a
// dead-letter queue takes a message after 5 receives.
func TestEventsSetupScript(t *testing.T) {
	ev := setupEvents(t, "")
	pattern, err := os.ReadFile(filepath.Join("..", "deploy", "events", "event-pattern.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want, got any
	json.Unmarshal(pattern, &want)
	json.Unmarshal([]byte(awsCLI(t, "events", "describe-rule", "--name", ev.rule, "--query", "EventPattern")), &got)
	if fmt.Sprint(want) != fmt.Sprint(got) {
		t.Errorf("rule pattern = %v, want %v", got, want)
	}
	if target := awsCLI(t, "events", "list-targets-by-rule", "--rule", ev.rule, "--query", "Targets[0].Arn"); !strings.HasSuffix(target, ":"+strings.TrimPrefix(ev.queueURL[strings.LastIndex(ev.queueURL, "/"):], "/")) {
		t.Errorf("rule target = %s, want the queue %s", target, ev.queueURL)
	}
	attrs := awsCLI(t, "sqs", "get-queue-attributes", "--queue-url", ev.queueURL, "--attribute-names", "Policy", "RedrivePolicy", "--output", "json")
	for _, want := range []string{`events.amazonaws.com`, `sqs:SendMessage`, `rule/` + ev.rule, `-dlq`, `maxReceiveCount`} {
		if !strings.Contains(attrs, want) {
			t.Errorf("queue attributes lack %s:\n%s", want, attrs)
		}
	}
}

// A GitHub push delivery to /hooks/git starts a pass over that repository
// at once: a Deployment a person added is updated long before the hourly
// poll. A delivery with a wrong signature is refused and starts nothing.
func TestGitWebhookTriggersPass(t *testing.T) {
	ev := &eventsEnv{env: setupRepo(t, "hooked", testpeers.SeedDeployment)}
	secretFile := filepath.Join(ev.dir, "webhook-secret")
	os.WriteFile(secretFile, []byte("hook-secret\n"), 0o600)
	ev.start(t, fmt.Sprintf("events:\n  webhook: {secretFile: %s}\n  coalesce: 100ms\n", secretFile))
	waitFor(t, "first commit", func() bool { return strings.HasSuffix(markerOnMain(t, ev.env), testpeers.SeedNewestTag) })

	// A person adds a second marker of the same policy, at an old tag.
	work := ev.clone(t)
	os.MkdirAll(filepath.Join(work, "apps", "second"), 0o755)
	os.WriteFile(filepath.Join(work, "apps", "second", "deployment.yaml"),
		[]byte("image: "+testpeers.SeedImage+":qa-sha-0000000 # {\"$imagepolicy\": \"falcon-qa:my-policy-bartender\"}\n"), 0o644)
	gitOut(t, work, "add", ".")
	gitOut(t, work, "-c", "user.name=A Person", "-c", "user.email=person@example.com", "commit", "-qm", "second app")
	gitOut(t, work, "push", "-q", "origin", "main")

	payload := fmt.Sprintf(`{"ref": "refs/heads/main", "repository": {"clone_url": %q}}`, ev.remote)
	deliver := func(key string) int {
		mac := hmac.New(sha256.New, []byte(key))
		mac.Write([]byte(payload))
		req, _ := http.NewRequest(http.MethodPost, ev.base+"/hooks/git", strings.NewReader(payload))
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := deliver("wrong-secret"); code != http.StatusUnauthorized {
		t.Errorf("badly signed delivery: status %d, want 401", code)
	}
	time.Sleep(500 * time.Millisecond) // a pass would have started
	second := func() string {
		out, _ := testpeers.Git(ev.bareDir(), "show", "main:apps/second/deployment.yaml")
		return out
	}
	if strings.Contains(second(), testpeers.SeedNewestTag) {
		t.Fatal("a badly signed delivery started a pass")
	}
	if code := deliver("hook-secret"); code != http.StatusAccepted {
		t.Fatalf("signed delivery: status %d, want 202", code)
	}
	waitFor(t, "the added marker updated", func() bool { return strings.Contains(second(), ":"+testpeers.SeedNewestTag+" ") })
	for series, want := range map[string]float64{
		`imagebutler_events_total{outcome="accepted",source="webhook"}`:     1,
		`imagebutler_events_total{outcome="unauthorized",source="webhook"}`: 1,
	} {
		if v := ev.metric(t, series); v != want {
			t.Errorf("%s = %v, want %v", series, v, want)
		}
	}
}

// BenchmarkPushToCommit measures an ECR push announced through EventBridge
// and SQS (moto) until the butler's commit is on the git server (git
// http-backend), with the default coalescing window (2 s from the event's
// time) and a short one. Run with -benchtime=20x or more: it reports the
// median and 95th percentile of the iterations.
//
//	go test -run '^$' -bench PushToCommit -benchtime 20x ./integration
func BenchmarkPushToCommit(b *testing.B) {
	for _, window := range []string{"2s", "500ms"} {
		b.Run("coalesce="+window, func(b *testing.B) {
			ev := setupEvents(b, "  coalesce: "+window+"\n")
			var took []time.Duration
			for i := 0; b.Loop(); i++ {
				tag := fmt.Sprintf("qa-sha-%07d", 5000+i)
				// moto and git keep whole seconds: each push is the newest.
				time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 10*time.Millisecond)))
				start := time.Now()
				digest := ev.push(b, tag)
				ev.announce(b, map[string]string{tag: digest}, tag)
				for !strings.HasSuffix(markerOnMain(b, ev.env), tag) {
					if time.Since(start) > 3*time.Minute {
						b.Fatalf("%s not committed within 3 minutes", tag)
					}
					time.Sleep(20 * time.Millisecond)
				}
				took = append(took, time.Since(start))
			}
			slices.Sort(took)
			b.ReportMetric(took[len(took)/2].Seconds(), "p50-s")
			b.ReportMetric(took[(len(took)*95+99)/100-1].Seconds(), "p95-s")
			b.ReportMetric(0, "ns/op")
		})
	}
}
