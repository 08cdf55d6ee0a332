package scanner

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/imagebutler/imagebutler/config"
)

// BenchmarkCycle is a steady-state cycle over 50 git repositories with 20
// policies each, pointing at 100 distinct ECR repositories of 1,000 tags,
// through a fake ECR client that takes 20 ms per page.
func BenchmarkCycle(b *testing.B) {
	const (
		gitRepos, policiesPerRepo, ecrRepos, tagsPerRepo = 50, 20, 100, 1000
	)
	page := make([]types.ImageDetail, tagsPerRepo)
	for i := range page {
		at := time.Unix(1_700_000_000+int64(i), 0)
		page[i] = types.ImageDetail{
			ImageDigest: aws.String(fmt.Sprintf("sha256:%064d", i)), ImagePushedAt: &at,
			ImageTags: []string{fmt.Sprintf("sha-%07d", i)}, ImageStatus: types.ImageStatusActive,
		}
	}
	fake := &pagedECR{pages: [][]types.ImageDetail{page}, latency: 20 * time.Millisecond}
	settings := config.AWS{Region: "us-east-2", MaxConcurrentRequests: 4, RequestsPerSecond: 1e6}
	lister := newECR(settings, nil, func(string, string) ecr.DescribeImagesAPIClient { return fake })

	var urls []string
	for g := range gitRepos {
		var ann, markers strings.Builder
		for k := range policiesPerRepo {
			repo := (g*2 + k*5) % ecrRepos
			fmt.Fprintf(&ann, "    app.lilly.com/flux.simple.p%d: \"283234040926;ecr_%03d;glob:sha-*\"\n", k, repo)
			fmt.Fprintf(&markers, "        - image: 283234040926.dkr.ecr.us-east-2.amazonaws.com/ecr_%03d:old # {\"$imagepolicy\": \"apps:p%d\"}\n", repo, k)
		}
		yaml := fmt.Sprintf("kind: Deployment\nmetadata:\n  name: app\n  namespace: apps\n  annotations:\n    app.lilly.com/flux.automated: \"true\"\n%sspec:\n  template:\n    spec:\n      containers:\n%s", ann.String(), markers.String())
		urls = append(urls, newRemote(b, map[string]string{"app.yaml": yaml}))
	}
	cfg := testConfig(b, urls...)
	cfg.Concurrency = 4
	cfg.AWS = settings
	s := New(cfg, lister, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, r := range s.RunOnce(context.Background()) { // clones and commits
		if r.Err != nil || len(r.Changes) != policiesPerRepo {
			b.Fatalf("first cycle: %v, %d changes", r.Err, len(r.Changes))
		}
	}
	distinct := map[string]bool{}
	for _, r := range fake.requests {
		distinct[aws.ToString(r.RepositoryName)] = true
	}
	if len(fake.requests) != ecrRepos || len(distinct) != ecrRepos {
		b.Fatalf("first cycle made %d ECR requests over %d repositories, want %d", len(fake.requests), len(distinct), ecrRepos)
	}

	b.ReportAllocs()
	var heap uint64
	for b.Loop() {
		fake.requests = nil
		for _, r := range s.RunOnce(context.Background()) {
			if r.Err != nil || r.Commit != "" {
				b.Fatalf("steady cycle: %v, commit %q", r.Err, r.Commit)
			}
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heap = max(heap, ms.HeapInuse)
	}
	b.ReportMetric(float64(len(fake.requests)), "ecr-requests/op")
	b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MiB")
}
