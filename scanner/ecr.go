package scanner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/time/rate"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/gate"
	"github.com/imagebutler/imagebutler/policy"
)

// ECR lists ECR repositories through DescribeImages, with one client per
// account and region, at most MaxConcurrentRequests requests in flight and
// a rate limit per account and region.
type ECR struct {
	base     aws.Config
	settings config.AWS
	metrics  *Metrics
	log      *slog.Logger
	inFlight chan struct{}

	mu      sync.Mutex
	clients map[clientKey]*ecrClient
	// newClient builds the client for an account and region; tests replace it.
	newClient func(account, region string) ecr.DescribeImagesAPIClient
}

type clientKey struct{ account, region string }

type ecrClient struct {
	api     ecr.DescribeImagesAPIClient
	limiter *rate.Limiter
	login   registryLogin // the registry's credentials, kept until near expiry
}

// NewECR loads the base AWS identity the SDK's default way (IRSA, EKS Pod
// Identity, environment, shared profile) and returns a lister. Accounts
// listed in settings.Accounts are read through an assumed role; the ECR and
// STS endpoints follow settings.Endpoint (or AWS_ENDPOINT_URL_ECR and
// AWS_ENDPOINT_URL_STS). Requests retry throttling, 5xx and timeouts with
// the SDK's adaptive retryer. m may be nil. The SDK's own warnings go to
// log.
func NewECR(ctx context.Context, settings config.AWS, m *Metrics, log *slog.Logger) (*ECR, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if settings.Region != "" {
		opts = append(opts, awsconfig.WithRegion(settings.Region))
	}
	base, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	e := newECR(settings, m, nil)
	e.log = log
	base.Logger = SDKLogger(log)
	e.base = base
	e.newClient = e.sdkClient
	return e, nil
}

// SDKLogger routes the AWS SDK's own messages to log: its warnings (such
// as a response without a checksum it supports) at warn, the rest at debug,
// instead of the SDK's default logger writing bare lines to stderr.
func SDKLogger(log *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		level := slog.LevelDebug
		if c == logging.Warn {
			level = slog.LevelWarn
		}
		log.Log(context.Background(), level, "AWS SDK: "+fmt.Sprintf(format, v...))
	})
}

func newECR(settings config.AWS, m *Metrics, newClient func(account, region string) ecr.DescribeImagesAPIClient) *ECR {
	n := settings.MaxConcurrentRequests
	if n <= 0 {
		n = config.DefaultMaxConcurrentRequests
	}
	return &ECR{settings: settings, metrics: m, inFlight: make(chan struct{}, n), clients: map[clientKey]*ecrClient{}, newClient: newClient}
}

func (e *ECR) sdkClient(account, region string) ecr.DescribeImagesAPIClient {
	cfg := e.base.Copy()
	cfg.Region = region
	attempts, maxBackoff := e.settings.MaxAttempts, time.Duration(e.settings.MaxBackoff)
	if attempts <= 0 {
		attempts = config.DefaultMaxAttempts
	}
	if maxBackoff <= 0 {
		maxBackoff = config.DefaultMaxBackoff
	}
	cfg.Retryer = func() aws.Retryer {
		return retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
			o.StandardOptions = append(o.StandardOptions, func(so *retry.StandardOptions) {
				so.MaxAttempts = attempts
				so.MaxBackoff = maxBackoff
				so.Backoff = retry.NewExponentialJitterBackoff(maxBackoff)
				so.RateLimiter = ratelimit.None // our own limiter paces requests
			})
		})
	}
	timeout := time.Duration(e.settings.RequestTimeout)
	if timeout <= 0 {
		timeout = config.DefaultRequestTimeout
	}
	maxBytes := e.settings.MaxResponseMiB
	if maxBytes <= 0 {
		maxBytes = config.DefaultMaxResponseMiB
	}
	cfg.HTTPClient = cappedBodies{awshttp.NewBuildableClient().WithTimeout(timeout), int64(maxBytes) << 20}
	if a, ok := e.settings.Accounts[account]; ok {
		stsClient := sts.NewFromConfig(e.base, func(o *sts.Options) {
			if e.settings.Endpoint != "" {
				o.BaseEndpoint = aws.String(e.settings.Endpoint)
			}
		})
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, a.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = "imagebutler"
		}))
	}
	return ecr.NewFromConfig(cfg, func(o *ecr.Options) {
		if e.settings.Endpoint != "" {
			o.BaseEndpoint = aws.String(e.settings.Endpoint)
		}
		o.APIOptions = append(o.APIOptions, e.countAttempts)
	})
}

// cappedBodies is an HTTP client whose response bodies end in an error past
// max bytes: a broken or hostile endpoint cannot make the SDK hold a huge
// response.
type cappedBodies struct {
	c   aws.HTTPClient
	max int64
}

// Do sends the request and caps the response body.
func (c cappedBodies) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		// smithy-go closes the request body as soon as Do returns, while
		// net/http may still be reading it for its end (after the response
		// headers came): the transport then takes the connection for broken
		// and closes it under the response being read ("deserialization
		// failed, ... use of closed network connection", a failed attempt
		// every few dozen requests; TestListManyPagesOnKeptConnections). The
		// body is in memory: leaving it open costs nothing.
		req.Body = keptOpen{req.Body}
	}
	resp, err := c.c.Do(req)
	if err == nil && resp.Body != nil {
		resp.Body = &cappedBody{rc: resp.Body, left: c.max, max: c.max}
	}
	return resp, err
}

// keptOpen is a request body whose Close does nothing.
type keptOpen struct{ io.Reader }

func (keptOpen) Close() error { return nil }

type cappedBody struct {
	rc        io.ReadCloser
	left, max int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("ECR response larger than aws.maxResponseMiB (%d MiB); stopped", b.max>>20)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *cappedBody) Close() error { return b.rc.Close() }

// countAttempts adds a middleware inside the retry loop that counts every
// attempt by operation and outcome.
func (e *ECR) countAttempts(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("imagebutlerCountAttempts",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleFinalize(ctx, in)
			outcome := "ok"
			if err != nil {
				outcome = outcomeLabel(errorCode(err))
			}
			e.metrics.ecrRequest(middleware.GetOperationName(ctx), outcome)
			return out, md, err
		}), middleware.After)
}

func (e *ECR) client(account, region string) *ecrClient {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := clientKey{account, region}
	c, ok := e.clients[k]
	if !ok {
		rps := e.settings.RequestsPerSecond
		if rps <= 0 {
			rps = config.DefaultRequestsPerSecond
		}
		c = &ecrClient{api: e.newClient(account, region), limiter: rate.NewLimiter(rate.Limit(rps), max(1, int(rps)))}
		e.clients[k] = c
	}
	return c
}

// List returns the tagged, active images of the repository ref names,
// oldest first. It always passes the account as RegistryId, as
// cross-account ECR requires. Artifacts that are not images (signatures,
// attestations, SBOMs, SOCI indexes, Helm charts) are left out; with
// ref.Charts, the Helm charts are listed and everything else left out.
func (e *ECR) List(ctx context.Context, ref policy.ImageRef) ([]policy.Image, error) {
	c := e.client(ref.Account, ref.Region)
	p := ecr.NewDescribeImagesPaginator(c.api, &ecr.DescribeImagesInput{
		RepositoryName: aws.String(ref.Repository),
		RegistryId:     aws.String(ref.Account),
		Filter:         &types.DescribeImagesFilter{TagStatus: types.TagStatusTagged},
		MaxResults:     aws.Int32(1000),
	})
	var (
		images   []policy.Image
		byDigest = map[string]int{}
		invalid  []string // tags and digests that break ECR's rules, dropped
	)
	maxPages := e.settings.MaxPages
	if maxPages <= 0 {
		maxPages = config.DefaultMaxPages
	}
	tokens := map[string]bool{} // a repeated token would list forever
	for pages := 0; p.HasMorePages(); pages++ {
		if pages == maxPages {
			return nil, fmt.Errorf("listing %s: more than aws.maxPages (%d) pages of images; stopped", ref, maxPages)
		}
		page, err := e.page(ctx, c, p)
		if err != nil {
			return nil, listError(ref, err)
		}
		if t := aws.ToString(page.NextToken); t != "" {
			if tokens[t] {
				return nil, fmt.Errorf("listing %s: ECR sent the same nextToken twice; stopped", ref)
			}
			tokens[t] = true
		}
		if n := len(page.ImageDetails); cap(images)-len(images) < n {
			// Double as pages come: append's 1.25x steps past 256 images
			// would copy a 10,000-image listing about five times over.
			images = slices.Grow(images, max(n, len(images)))
		}
		for _, d := range page.ImageDetails {
			images = addImage(images, byDigest, d, ref.Charts, &invalid)
		}
	}
	e.counted(ref, len(images), invalid)
	slices.SortStableFunc(images, OldestFirst)
	if cap(images)-len(images) > len(images)/8 {
		// The listing is held through the cycle: without the room grown
		// for pages that did not come.
		images = slices.Clone(images)
	}
	return images, nil
}

// OldestFirst orders images as listings hold them: by push time, then
// digest. A new push lands at the end, so the listing is the last one
// followed by new images (policy.Lineage), whose selection judges only those.
func OldestFirst(a, b policy.Image) int {
	if c := a.PushedAt.Compare(b.PushedAt); c != 0 {
		return c
	}
	return strings.Compare(a.Digest, b.Digest)
}

// addImage appends the image d describes to images, or its tags to the
// image of the same digest already there (one image reported twice: on two
// pages, or once per tag); byDigest indexes images. With charts, d counts
// only when it is a Helm chart, else only when it is a container image.
func addImage(images []policy.Image, byDigest map[string]int, d types.ImageDetail, charts bool, invalid *[]string) []policy.Image {
	img, ok := imageOf(d, charts, invalid)
	if !ok {
		return images
	}
	if i, seen := byDigest[img.Digest]; seen && img.Digest != "" {
		images[i].Tags = append(images[i].Tags, img.Tags...)
		return images
	}
	byDigest[img.Digest] = len(images)
	return append(images, img)
}

// imageOf is the image d describes, with the tags and digests that break
// ECR's rules left out (and added to invalid); ok is false for what is not
// a tagged, active image (with charts: a tagged, active Helm chart).
func imageOf(d types.ImageDetail, charts bool, invalid *[]string) (img policy.Image, ok bool) {
	digest := aws.ToString(d.ImageDigest)
	if digest != "" && !digestRE.MatchString(digest) {
		*invalid = append(*invalid, "digest "+strconv.QuoteToASCII(digest))
		return img, false
	}
	d.ImageTags = slices.DeleteFunc(d.ImageTags, func(t string) bool {
		if t != "" && !tagRE.MatchString(t) {
			*invalid = append(*invalid, "tag "+strconv.QuoteToASCII(t))
			return true
		}
		return t == ""
	})
	if len(d.ImageTags) == 0 || (d.ImageStatus != "" && d.ImageStatus != types.ImageStatusActive) || isChart(d) != charts || !charts && !isImage(d) {
		return img, false
	}
	// Nothing else of d is kept: a listing holds 10,000s of images for a
	// cycle, and its media types have done their work in isImage.
	img = policy.Image{Tags: d.ImageTags, Digest: digest}
	if d.ImagePushedAt != nil {
		img.PushedAt = *d.ImagePushedAt
	}
	return img, true
}

// counted records a listing's images and dropped values in the metrics and
// warns once of the dropped ones.
func (e *ECR) counted(ref policy.ImageRef, images int, invalid []string) {
	if e.metrics != nil {
		e.metrics.imagesListed.Add(float64(images))
		e.metrics.invalidTags.Add(float64(len(invalid)))
	}
	if len(invalid) > 0 && e.log != nil {
		e.log.Warn(fmt.Sprintf("ECR %s returned %d tag(s) or digest(s) that break ECR's rules; dropped", ref, len(invalid)),
			"examples", strings.Join(invalid[:min(3, len(invalid))], ", "))
	}
}

// ImageID names one pushed image: by tag, by digest, or both.
type ImageID struct {
	Tag    string
	Digest string
}

// Describe returns the images ids name in the repository ref, as List
// would report them, in one DescribeImages call (at most 100 ids) when ECR
// knows them all. ECR fails the whole call when it knows one of them no
// more (deleted since the push): the ids are then described in halves,
// down to the one that is gone, which is left out, not an error.
func (e *ECR) Describe(ctx context.Context, ref policy.ImageRef, ids []ImageID) ([]policy.Image, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if len(ids) > 100 {
		return nil, fmt.Errorf("describing %s: %d images at once; at most 100", ref, len(ids))
	}
	images, err := e.describe(ctx, ref, ids)
	var notFound *types.ImageNotFoundException
	switch {
	case errors.As(err, &notFound) && len(ids) > 1:
		first, err := e.Describe(ctx, ref, ids[:len(ids)/2])
		if err != nil {
			return nil, err
		}
		rest, err := e.Describe(ctx, ref, ids[len(ids)/2:])
		if err != nil {
			return nil, err
		}
		return append(first, rest...), nil
	case errors.As(err, &notFound):
		return nil, nil // deleted since the push: nothing to merge
	case err != nil:
		return nil, listError(ref, err)
	}
	return images, nil
}

// describe is one DescribeImages call for ids; ECR's errors are returned
// as they are.
func (e *ECR) describe(ctx context.Context, ref policy.ImageRef, ids []ImageID) ([]policy.Image, error) {
	c := e.client(ref.Account, ref.Region)
	in := &ecr.DescribeImagesInput{RepositoryName: aws.String(ref.Repository), RegistryId: aws.String(ref.Account)}
	for _, id := range ids {
		var iid types.ImageIdentifier
		if id.Tag != "" {
			iid.ImageTag = aws.String(id.Tag)
		}
		if id.Digest != "" {
			iid.ImageDigest = aws.String(id.Digest)
		}
		in.ImageIds = append(in.ImageIds, iid)
	}
	release, err := e.admit(ctx, c)
	if err != nil {
		return nil, err
	}
	defer release()
	out, err := c.api.DescribeImages(ctx, in)
	if err != nil {
		return nil, err
	}
	var (
		images   []policy.Image
		invalid  []string
		byDigest = map[string]int{}
	)
	for _, d := range out.ImageDetails {
		images = addImage(images, byDigest, d, ref.Charts, &invalid)
	}
	e.counted(ref, len(images), invalid)
	return images, nil
}

// scanFindingsAPI is the part of ECR's client that reads scan findings.
type scanFindingsAPI interface {
	DescribeImageScanFindings(ctx context.Context, in *ecr.DescribeImageScanFindingsInput, opts ...func(*ecr.Options)) (*ecr.DescribeImageScanFindingsOutput, error)
}

// Scan reads the scan of the image digest in the repository ref: the
// summary DescribeImages returns (basic and enhanced scanning), and
// DescribeImageScanFindings only where the summary is missing. An image
// ECR has no scan of is gate.NotScanned.
func (e *ECR) Scan(ctx context.Context, ref policy.ImageRef, digest string) (gate.ScanResult, error) {
	c := e.client(ref.Account, ref.Region)
	id := []types.ImageIdentifier{{ImageDigest: aws.String(digest)}}
	release, err := e.admit(ctx, c)
	if err != nil {
		return gate.ScanResult{}, err
	}
	out, err := c.api.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String(ref.Repository), RegistryId: aws.String(ref.Account), ImageIds: id})
	release()
	if err != nil {
		return gate.ScanResult{}, listError(ref, err)
	}
	var r gate.ScanResult
	if len(out.ImageDetails) > 0 {
		d := out.ImageDetails[0]
		if d.ImageScanStatus != nil {
			r.Status = string(d.ImageScanStatus.Status)
		}
		if d.ImageScanFindingsSummary != nil {
			if r.Status == "" {
				r.Status = "COMPLETE"
			}
			r.Counts = severityCounts(d.ImageScanFindingsSummary.FindingSeverityCounts)
			return r, nil
		}
	}
	// No summary: ask for the findings.
	f, ok := c.api.(scanFindingsAPI)
	if !ok {
		return gate.ScanResult{Status: gate.NotScanned}, nil
	}
	if release, err = e.admit(ctx, c); err != nil {
		return gate.ScanResult{}, err
	}
	findings, err := f.DescribeImageScanFindings(ctx, &ecr.DescribeImageScanFindingsInput{
		RepositoryName: aws.String(ref.Repository), RegistryId: aws.String(ref.Account), ImageId: &id[0], MaxResults: aws.Int32(1),
	})
	release()
	var notFound *types.ScanNotFoundException
	switch {
	case errors.As(err, &notFound):
		return gate.ScanResult{Status: gate.NotScanned}, nil
	case err != nil:
		return gate.ScanResult{}, listError(ref, err)
	}
	if findings.ImageScanStatus != nil {
		r.Status = string(findings.ImageScanStatus.Status)
	}
	if findings.ImageScanFindings != nil {
		r.Counts = severityCounts(findings.ImageScanFindings.FindingSeverityCounts)
	}
	if r.Status == "" {
		r.Status = gate.NotScanned
	}
	return r, nil
}

func severityCounts(m map[string]int32) map[string]int32 {
	out := make(map[string]int32, len(m))
	for k, v := range m {
		out[strings.ToUpper(k)] = v
	}
	return out
}

// page fetches one page, within the in-flight bound and the rate limit.
func (e *ECR) page(ctx context.Context, c *ecrClient, p *ecr.DescribeImagesPaginator) (*ecr.DescribeImagesOutput, error) {
	release, err := e.admit(ctx, c)
	if err != nil {
		return nil, err
	}
	defer release()
	return p.NextPage(ctx)
}

// admit waits for a place among the requests in flight and for c's rate
// limit; release gives the place back.
func (e *ECR) admit(ctx context.Context, c *ecrClient) (release func(), err error) {
	select {
	case e.inFlight <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := c.limiter.Wait(ctx); err != nil {
		<-e.inFlight
		return nil, err
	}
	return func() { <-e.inFlight }, nil
}

// ECR's own rules for tags and digests; anything else a listing holds (a
// broken or hostile endpoint) is dropped before it can reach a file.
var (
	tagRE    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// ValidTag reports whether tag keeps ECR's rules for tags.
func ValidTag(tag string) bool { return tagRE.MatchString(tag) }

// ValidDigest reports whether digest is a sha256 digest as ECR writes them.
func ValidDigest(digest string) bool { return digestRE.MatchString(digest) }

// imageConfigTypes are the config media types of container images. An
// image index has none; signatures, attestations, SBOMs and SOCI indexes
// have others.
var imageConfigTypes = map[string]bool{
	"": true,
	"application/vnd.docker.container.image.v1+json": true,
	"application/vnd.oci.image.config.v1+json":       true,
}

func isImage(d types.ImageDetail) bool {
	return imageConfigTypes[aws.ToString(d.ArtifactMediaType)]
}

// HelmChartConfigType is the config media type of a Helm chart stored in
// an OCI registry (`helm push`), which ECR reports as the artifact media
// type.
const HelmChartConfigType = "application/vnd.cncf.helm.config.v1+json"

func isChart(d types.ImageDetail) bool {
	return aws.ToString(d.ArtifactMediaType) == HelmChartConfigType
}

// knownOutcomes are the error codes the request metric names; any other
// code a server sends counts as "other", so that it cannot grow the metric.
var knownOutcomes = map[string]bool{
	"timeout": true, "error": true, "ThrottlingException": true, "ServerException": true,
	"AccessDeniedException": true, "RepositoryNotFoundException": true, "InvalidParameterException": true,
	"UnrecognizedClientException": true, "InvalidSignatureException": true, "ExpiredTokenException": true,
	"ServiceUnavailable": true, "InternalFailure": true, "LimitExceededException": true, "RequestTimeout": true,
}

func outcomeLabel(code string) string {
	if knownOutcomes[code] {
		return code
	}
	return "other"
}

// errorCode is the AWS error code of err, or "error".
func errorCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return "timeout"
	}
	return "error"
}

// listError names the AWS error code and the repository, and ends with a
// one-line hint where the cause is a common one:
// "AccessDeniedException on 283234040926/lrl_x in us-east-2: ... (hint: ...)".
func listError(ref policy.ImageRef, err error) error {
	hint := listHint(ref, err)
	if hint != "" {
		hint = " (hint: " + hint + ")"
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		return fmt.Errorf("%s on %s: %w%s", api.ErrorCode(), ref, err, hint)
	}
	return fmt.Errorf("listing %s: %w%s", ref, err, hint)
}

// listHint says what usually fixes err, or "".
func listHint(ref policy.ImageRef, err error) string {
	var (
		api smithy.APIError
		op  *net.OpError
		dns *net.DNSError
	)
	switch {
	case errors.As(err, &api):
		switch api.ErrorCode() {
		case "AccessDeniedException":
			return fmt.Sprintf("the identity needs ecr:DescribeImages on %s (deploy/iam/reader-policy.json; another account's ECR needs aws.accounts and a role there)", ref.Repository)
		case "RepositoryNotFoundException":
			return fmt.Sprintf("no repository %s in account %s, region %s: check the annotation's account, region and name", ref.Repository, ref.Account, ref.Region)
		case "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException", "InvalidClientTokenId":
			return "the AWS credentials were refused: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the profile, and that they are not expired"
		}
	case strings.Contains(err.Error(), "get credentials:") || strings.Contains(err.Error(), "failed to refresh cached credentials"):
		return "no AWS credentials found: on EKS annotate the ServiceAccount with eks.amazonaws.com/role-arn (IRSA) or use EKS Pod Identity; on a laptop set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
	case errors.As(err, &dns), errors.As(err, &op) && op.Op == "dial":
		return "ECR could not be reached: check aws.endpoint, AWS_ENDPOINT_URL_ECR or AWS_ENDPOINT_URL, and that the server answers"
	}
	return ""
}
