package scanner

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/policy"
)

// pagedECR serves pages of image details and records the requests.
type pagedECR struct {
	mu       sync.Mutex
	pages    [][]types.ImageDetail
	requests []*ecr.DescribeImagesInput
	err      error
	latency  time.Duration
	inFlight atomic.Int32
	peak     atomic.Int32
}

func (f *pagedECR) DescribeImages(_ context.Context, in *ecr.DescribeImagesInput, _ ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error) {
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for p := f.peak.Load(); n > p && !f.peak.CompareAndSwap(p, n); p = f.peak.Load() {
	}
	time.Sleep(f.latency)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, in)
	if f.err != nil {
		return nil, f.err
	}
	i := 0
	if in.NextToken != nil {
		fmt.Sscan(aws.ToString(in.NextToken), &i)
	}
	out := &ecr.DescribeImagesOutput{}
	if i < len(f.pages) {
		out.ImageDetails = f.pages[i]
	}
	if i+1 < len(f.pages) {
		out.NextToken = aws.String(fmt.Sprint(i + 1))
	}
	return out, nil
}

func detail(digest string, pushed int, status types.ImageStatus, tags ...string) types.ImageDetail {
	t := time.Unix(int64(1_700_000_000+pushed), 0).UTC()
	return types.ImageDetail{ImageDigest: aws.String(digest), ImagePushedAt: &t, ImageStatus: status, ImageTags: tags,
		ImageManifestMediaType: aws.String("application/vnd.oci.image.manifest.v1+json"),
		ArtifactMediaType:      aws.String("application/vnd.oci.image.config.v1+json")}
}

func withTypes(d types.ImageDetail, manifest, artifact string) types.ImageDetail {
	d.ImageManifestMediaType, d.ArtifactMediaType = aws.String(manifest), aws.String(artifact)
	if artifact == "" {
		d.ArtifactMediaType = nil
	}
	return d
}

func testECR(f *pagedECR, settings config.AWS) *ECR {
	return newECR(settings, nil, func(string, string) ecr.DescribeImagesAPIClient { return f })
}

func TestListPagesAndFilters(t *testing.T) {
	const index = "application/vnd.oci.image.index.v1+json"
	f := &pagedECR{pages: [][]types.ImageDetail{
		{detail(digestOf("c"), 5, types.ImageStatusActive, "c"), detail(digestOf("u"), 2, "")}, // untagged
		{detail(digestOf("b"), 3, "", "b")},
		{detail(digestOf("b"), 3, "", "b2"), detail(digestOf("old"), 4, types.ImageStatusArchived, "archived")}, // b again, across a page boundary
		{withTypes(detail(digestOf("idx"), 6, "", "multiarch"), index, ""), // an index: one image; its children are untagged
			withTypes(detail(digestOf("child1"), 6, ""), "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.config.v1+json")},
		{withTypes(detail(digestOf("sig"), 7, "", "sha256-c.sig"), "application/vnd.oci.image.manifest.v1+json", "application/vnd.dev.cosign.artifact.sig.v1+json"),
			withTypes(detail(digestOf("soci"), 8, "", "soci"), "application/vnd.oci.image.manifest.v1+json", "application/vnd.amazon.soci.index.v1+json"),
			withTypes(detail(digestOf("a"), 1, types.ImageStatusActive, "a"), "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.container.image.v1+json"),
			withTypes(detail(digestOf("chart"), 9, "", "6.5.0"), "application/vnd.oci.image.manifest.v1+json", HelmChartConfigType)},
	}}
	ref := policy.ImageRef{Account: "283234040926", Region: "us-east-2", Repository: "team/app"}
	got, err := testECR(f, config.AWS{}).List(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	type img struct {
		Tags   []string
		Digest string
	}
	var gotImgs []img
	for _, g := range got {
		gotImgs = append(gotImgs, img{g.Tags, g.Digest})
	}
	want := []img{{[]string{"a"}, digestOf("a")}, {[]string{"b", "b2"}, digestOf("b")}, {[]string{"c"}, digestOf("c")}, {[]string{"multiarch"}, digestOf("idx")}}
	if diff := cmp.Diff(want, gotImgs); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	if got[0].PushedAt.IsZero() {
		t.Errorf("push time lost: %+v", got)
	}
	if len(f.requests) != 5 {
		t.Fatalf("requests = %d, want 5", len(f.requests))
	}
	for i, r := range f.requests {
		if aws.ToString(r.RegistryId) != "283234040926" || aws.ToString(r.RepositoryName) != "team/app" ||
			aws.ToInt32(r.MaxResults) != 1000 || r.Filter == nil || r.Filter.TagStatus != types.TagStatusTagged {
			t.Errorf("request %d = %+v", i, r)
		}
	}

	// The Helm charts of the same repository, and nothing else.
	ref.Charts = true
	charts, err := testECR(f, config.AWS{}).List(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if len(charts) != 1 || charts[0].Digest != digestOf("chart") || charts[0].Tags[0] != "6.5.0" {
		t.Errorf("List of charts = %+v, want the chart 6.5.0 alone", charts)
	}
}

func TestListErrorNamesCodeRepositoryAndHint(t *testing.T) {
	ref := policy.ImageRef{Account: "283234040926", Region: "us-east-2", Repository: "lrl_x"}
	tests := []struct {
		err  error
		want string
	}{
		{&smithy.GenericAPIError{Code: "AccessDeniedException", Message: "no"},
			"AccessDeniedException on 283234040926/lrl_x in us-east-2: api error AccessDeniedException: no (hint: the identity needs ecr:DescribeImages on lrl_x (deploy/iam/reader-policy.json; another account's ECR needs aws.accounts and a role there))"},
		{&smithy.GenericAPIError{Code: "RepositoryNotFoundException", Message: "no"},
			"RepositoryNotFoundException on 283234040926/lrl_x in us-east-2: api error RepositoryNotFoundException: no (hint: no repository lrl_x in account 283234040926, region us-east-2: check the annotation's account, region and name)"},
		{&smithy.GenericAPIError{Code: "ThrottlingException", Message: "slow down"},
			"ThrottlingException on 283234040926/lrl_x in us-east-2: api error ThrottlingException: slow down"},
		{errors.New("get identity: get credentials: failed to refresh cached credentials, no EC2 IMDS role found"),
			"listing 283234040926/lrl_x in us-east-2: get identity: get credentials: failed to refresh cached credentials, no EC2 IMDS role found (hint: no AWS credentials found: on EKS annotate the ServiceAccount with eks.amazonaws.com/role-arn (IRSA) or use EKS Pod Identity; on a laptop set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)"},
		{fmt.Errorf("request send failed: %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}),
			"listing 283234040926/lrl_x in us-east-2: request send failed: dial tcp: connection refused (hint: ECR could not be reached: check aws.endpoint, AWS_ENDPOINT_URL_ECR or AWS_ENDPOINT_URL, and that the server answers)"},
	}
	for _, tt := range tests {
		f := &pagedECR{err: tt.err}
		_, err := testECR(f, config.AWS{}).List(context.Background(), ref)
		if err == nil || err.Error() != tt.want {
			t.Errorf("error = %v\nwant    %s", err, tt.want)
		}
		if !errors.Is(err, tt.err) {
			t.Error("error chain lost the cause")
		}
	}
}

func TestListBoundsRequestsInFlight(t *testing.T) {
	f := &pagedECR{pages: [][]types.ImageDetail{{detail(digestOf("a"), 1, "", "a")}}, latency: 5 * time.Millisecond}
	e := testECR(f, config.AWS{MaxConcurrentRequests: 2, RequestsPerSecond: 1e6})
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.List(context.Background(), policy.ImageRef{Account: "283234040926", Region: "us-east-2", Repository: fmt.Sprintf("r%d", i)})
		}()
	}
	wg.Wait()
	if p := f.peak.Load(); p > 2 || p < 1 {
		t.Errorf("peak requests in flight = %d, want at most 2", p)
	}
}

// What the SDK logs (its warnings, those of STS and credential providers
// built from the same config) goes through the service's logger as JSON.
func TestSDKLogsGoToSlog(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "x")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "y")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	var buf bytes.Buffer
	e, err := NewECR(context.Background(), config.AWS{Region: "us-east-2"}, nil, slog.New(slog.NewJSONHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	e.base.Logger.Logf(logging.Warn, "failed to discard %d bytes", 3)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil || line["level"] != "WARN" || line["msg"] != "AWS SDK: failed to discard 3 bytes" {
		t.Errorf("SDK log line = %q (%v)", buf.String(), err)
	}
}

// digestOf is a valid digest made from a short name.
func digestOf(name string) string {
	sum := sha256.Sum256([]byte(name))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Tags and digests that break ECR's rules (a broken or hostile endpoint)
// are dropped where they enter, counted, and reported once per listing.
func TestListDropsInvalidTagsAndDigests(t *testing.T) {
	f := &pagedECR{pages: [][]types.ImageDetail{{
		detail(digestOf("good"), 1, "", "v1", "build-{{ .Values.secret }}", "a\nb", "-leading", "nul\x00", strings.Repeat("x", 129)),
		detail("sha256:NOTHEX", 2, "", "v2"),
		detail(digestOf("ok"), 3, "", "_under.score-1"),
	}}}
	var logs bytes.Buffer
	e := testECR(f, config.AWS{})
	e.log = slog.New(slog.NewJSONHandler(&logs, nil))
	reg := prometheus.NewRegistry()
	e.metrics = NewMetrics(reg)
	got, err := e.List(context.Background(), policy.ImageRef{Account: "283234040926", Region: "us-east-2", Repository: "x"})
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, img := range got {
		tags = append(tags, img.Tags...)
	}
	if diff := cmp.Diff([]string{"v1", "_under.score-1"}, tags); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
	if n := testutil.ToFloat64(e.metrics.invalidTags); n != 6 {
		t.Errorf("invalid tags counted = %v, want 6", n)
	}
	if lines := strings.Count(logs.String(), "\n"); lines != 1 || !strings.Contains(logs.String(), "returned 6 tag(s) or digest(s) that break ECR's rules") {
		t.Errorf("log = %s", logs.String())
	}
}

// hostileECR answers DescribeImages the way a broken endpoint might.
func hostileECR(t testing.TB, answer func(w http.ResponseWriter, r *http.Request)) *ECR {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(answer))
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ACCESS_KEY_ID", "x")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "y")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	settings := config.AWS{Region: "us-east-2", Endpoint: srv.URL, MaxAttempts: 1, MaxPages: 50, MaxResponseMiB: 8,
		RequestsPerSecond: 1000, RequestTimeout: config.Duration(time.Minute)}
	e, err := NewECR(context.Background(), settings, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

var hostileRef = policy.ImageRef{Account: "283234040926", Region: "us-east-2", Repository: "x"}

func TestListStopsOnRepeatedToken(t *testing.T) {
	for name, tokens := range map[string][]string{"same token": {"a"}, "two tokens in turn": {"a", "b"}, "a new token every page": nil} {
		t.Run(name, func(t *testing.T) {
			var calls atomic.Int64
			e := hostileECR(t, func(w http.ResponseWriter, r *http.Request) {
				n := calls.Add(1)
				token := fmt.Sprint("t", n)
				if tokens != nil {
					token = tokens[int(n)%len(tokens)]
				}
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				fmt.Fprintf(w, `{"imageDetails":[{"imageDigest":"%s","imageTags":["v%d"],"imagePushedAt":1.7e9}],"nextToken":%q}`, digestOf(token), n, token)
			})
			_, err := e.List(context.Background(), hostileRef)
			want := "same nextToken twice"
			if tokens == nil {
				want = "more than aws.maxPages (50) pages"
			}
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v, want %q", err, want)
			}
			if n := calls.Load(); n > 50 {
				t.Errorf("%d requests, want at most aws.maxPages", n)
			}
		})
	}
}

// A 1 GB response is streamed to its cap, never held.
func TestListCapsResponseBody(t *testing.T) {
	e := hostileECR(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		io.WriteString(w, `{"imageDetails":[{"imageDigest":"`)
		chunk := bytes.Repeat([]byte("a"), 1<<20)
		for range 1 << 10 { // 1 GiB, written a MiB at a time
			if _, err := w.Write(chunk); err != nil {
				return // the client hung up
			}
		}
	})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := e.List(context.Background(), hostileRef)
	runtime.ReadMemStats(&after)
	// The cap ends the read; the SDK then reports that (or, now and then, that
	// the connection it dropped at the cap was closed while it read).
	if err == nil || !strings.Contains(err.Error(), "larger than aws.maxResponseMiB (8 MiB)") && !strings.Contains(err.Error(), "deserialization failed") {
		t.Errorf("err = %v", err)
	}
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d MiB while refusing a 1 GiB response (heap in use after: %d MiB)", allocated>>20, after.HeapInuse>>20)
	if allocated > 256<<20 {
		t.Errorf("allocated %d MiB for a response capped at 8 MiB", allocated>>20)
	}
}
