package scanner

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/imagebutler/imagebutler/policy"
)

// pagedECR serves pages of image details and records the requests.
type pagedECR struct {
	pages    [][]types.ImageDetail
	requests []*ecr.DescribeImagesInput
	err      error
}

func (f *pagedECR) DescribeImages(_ context.Context, in *ecr.DescribeImagesInput, _ ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error) {
	f.requests = append(f.requests, in)
	if f.err != nil {
		return nil, f.err
	}
	i := 0
	if in.NextToken != nil {
		i = int(aws.ToString(in.NextToken)[0] - '0')
	}
	out := &ecr.DescribeImagesOutput{ImageDetails: f.pages[i]}
	if i+1 < len(f.pages) {
		out.NextToken = aws.String(string(rune('0' + i + 1)))
	}
	return out, nil
}

func detail(digest string, pushed int, status types.ImageStatus, tags ...string) types.ImageDetail {
	t := time.Unix(int64(1_700_000_000+pushed), 0).UTC()
	return types.ImageDetail{ImageDigest: aws.String(digest), ImagePushedAt: &t, ImageStatus: status, ImageTags: tags}
}

func TestListImagesPagesAndFilters(t *testing.T) {
	f := &pagedECR{pages: [][]types.ImageDetail{
		{detail("sha256:c", 5, types.ImageStatusActive, "c"), detail("sha256:u", 2, "")},
		{detail("sha256:b", 3, "", "b", "b2"), detail("sha256:old", 4, types.ImageStatusArchived, "archived")},
		{detail("sha256:a", 1, types.ImageStatusActive, "a")},
	}}
	ref := policy.ImageRef{Account: "283234040926", Region: "us-east-2", Repository: "team/app"}
	got, err := listImages(context.Background(), f, ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := func(s int) time.Time { return time.Unix(int64(1_700_000_000+s), 0).UTC() }
	want := []policy.Image{
		{Tags: []string{"a"}, Digest: "sha256:a", PushedAt: at(1)},
		{Tags: []string{"b", "b2"}, Digest: "sha256:b", PushedAt: at(3)},
		{Tags: []string{"c"}, Digest: "sha256:c", PushedAt: at(5)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("listImages (-want +got):\n%s", diff)
	}
	if len(f.requests) != 3 {
		t.Fatalf("requests = %d, want 3", len(f.requests))
	}
	for i, r := range f.requests {
		if aws.ToString(r.RegistryId) != "283234040926" || aws.ToString(r.RepositoryName) != "team/app" ||
			aws.ToInt32(r.MaxResults) != 1000 || r.Filter == nil || r.Filter.TagStatus != types.TagStatusTagged {
			t.Errorf("request %d = %+v", i, r)
		}
	}
}

func TestListImagesErrorNamesCodeAndRepository(t *testing.T) {
	f := &pagedECR{err: &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized"}}
	ref := policy.ImageRef{Account: "283234040926", Region: "us-east-2", Repository: "lrl_x"}
	_, err := listImages(context.Background(), f, ref, nil)
	want := "AccessDeniedException on 283234040926/lrl_x in us-east-2: api error AccessDeniedException: not authorized"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
	var api smithy.APIError
	if !errors.As(err, &api) {
		t.Error("error chain lost the smithy.APIError")
	}
}
