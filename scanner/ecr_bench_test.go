package scanner

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"
)

// pagedListing serves a listing of pages x perPage images as ECR sends it (each
// image described with the fields ECR gives), one page per request.
func pagedListing(tb testing.TB, pages, perPage int) *ECR {
	type detail struct {
		Digest       string   `json:"imageDigest"`
		Tags         []string `json:"imageTags"`
		PushedAt     float64  `json:"imagePushedAt"`
		Status       string   `json:"imageStatus"`
		ManifestType string   `json:"imageManifestMediaType"`
		ArtifactType string   `json:"artifactMediaType"`
		Size         int64    `json:"imageSizeInBytes"`
		Registry     string   `json:"registryId"`
		Repository   string   `json:"repositoryName"`
	}
	bodies := make([][]byte, pages)
	for p := range pages {
		details := make([]detail, perPage)
		for i := range details {
			n := p*perPage + i
			details[i] = detail{fmt.Sprintf("sha256:%064x", n*7919), []string{fmt.Sprintf("sha-%07x", n)}, 1.7e9 + float64(n), "ACTIVE",
				"application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.container.image.v1+json", 52_428_800,
				hostileRef.Account, hostileRef.Repository}
		}
		page := map[string]any{"imageDetails": details}
		if p+1 < pages {
			page["nextToken"] = strconv.Itoa(p + 1)
		}
		bodies[p], _ = json.Marshal(page)
	}
	return hostileECR(tb, func(w http.ResponseWriter, r *http.Request) {
		var in struct{ NextToken string }
		json.NewDecoder(r.Body).Decode(&in)
		p, _ := strconv.Atoi(in.NextToken)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Write(bodies[p])
	})
}

// Listing over kept-alive connections never fails an attempt (hostileECR
// allows one): smithy-go's early close of a request body made net/http
// close a connection under the response every few dozen requests.
func TestListManyPagesOnKeptConnections(t *testing.T) {
	e := pagedListing(t, 10, 1000)
	for i := range 40 {
		if images, err := e.List(context.Background(), hostileRef); err != nil || len(images) != 10_000 {
			t.Fatalf("listing %d: %d images, %v", i, len(images), err)
		}
	}
}

// BenchmarkList is one listing of 10,000 images (ten pages of 1,000), from
// the requests to the sorted []policy.Image: what a poll costs per ECR
// repository, most of a steady cycle's CPU.
func BenchmarkList(b *testing.B) {
	e := pagedListing(b, 10, 1000)
	b.ReportAllocs()
	for b.Loop() {
		images, err := e.List(context.Background(), hostileRef)
		if err != nil || len(images) != 10_000 {
			b.Fatalf("List = %d images, %v", len(images), err)
		}
	}
}
