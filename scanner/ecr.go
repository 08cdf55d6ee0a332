package scanner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/policy"
)

// ECR lists ECR repositories through DescribeImages, with one client per
// account and region.
type ECR struct {
	base     aws.Config
	settings config.AWS
	metrics  *Metrics

	mu      sync.Mutex
	clients map[clientKey]ecr.DescribeImagesAPIClient
	// newClient builds the client for an account and region; tests replace it.
	newClient func(account, region string) ecr.DescribeImagesAPIClient
}

type clientKey struct{ account, region string }

// NewECR loads the base AWS identity the SDK's default way (IRSA, EKS Pod
// Identity, environment, shared profile) and returns a lister. Accounts
// listed in settings.Accounts are read through an assumed role; the ECR and
// STS endpoints follow settings.Endpoint or AWS_ENDPOINT_URL_ECR.
func NewECR(ctx context.Context, settings config.AWS, m *Metrics) (*ECR, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if settings.Region != "" {
		opts = append(opts, awsconfig.WithRegion(settings.Region))
	}
	base, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	e := &ECR{base: base, settings: settings, metrics: m, clients: map[clientKey]ecr.DescribeImagesAPIClient{}}
	e.newClient = e.sdkClient
	return e, nil
}

func (e *ECR) sdkClient(account, region string) ecr.DescribeImagesAPIClient {
	cfg := e.base.Copy()
	cfg.Region = region
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
	})
}

func (e *ECR) client(account, region string) ecr.DescribeImagesAPIClient {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := clientKey{account, region}
	c, ok := e.clients[k]
	if !ok {
		c = e.newClient(account, region)
		e.clients[k] = c
	}
	return c
}

// List returns the tagged, active images of the repository ref names. It
// always passes the account as RegistryId, as cross-account ECR requires.
func (e *ECR) List(ctx context.Context, ref policy.ImageRef) ([]policy.Image, error) {
	return listImages(ctx, e.client(ref.Account, ref.Region), ref, e.metrics)
}

func listImages(ctx context.Context, c ecr.DescribeImagesAPIClient, ref policy.ImageRef, m *Metrics) ([]policy.Image, error) {
	p := ecr.NewDescribeImagesPaginator(c, &ecr.DescribeImagesInput{
		RepositoryName: aws.String(ref.Repository),
		RegistryId:     aws.String(ref.Account),
		Filter:         &types.DescribeImagesFilter{TagStatus: types.TagStatusTagged},
		MaxResults:     aws.Int32(1000),
	})
	var images []policy.Image
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			m.ecrRequest("DescribeImages", errorCode(err), 0)
			return nil, listError(ref, err)
		}
		m.ecrRequest("DescribeImages", "ok", len(page.ImageDetails))
		for _, d := range page.ImageDetails {
			if len(d.ImageTags) == 0 || (d.ImageStatus != "" && d.ImageStatus != types.ImageStatusActive) {
				continue
			}
			img := policy.Image{Tags: d.ImageTags, Digest: aws.ToString(d.ImageDigest)}
			if d.ImagePushedAt != nil {
				img.PushedAt = *d.ImagePushedAt
			}
			images = append(images, img)
		}
	}
	// Oldest first: a new push lands at the end, so a policy.Memo finds the
	// earlier tags where they were.
	slices.SortStableFunc(images, func(a, b policy.Image) int {
		if c := a.PushedAt.Compare(b.PushedAt); c != 0 {
			return c
		}
		return strings.Compare(a.Digest, b.Digest)
	})
	return images, nil
}

// errorCode is the AWS error code of err, or "error".
func errorCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return "error"
}

// listError names the AWS error code and the repository:
// "AccessDeniedException on 283234040926/lrl_x in us-east-2: ...".
func listError(ref policy.ImageRef, err error) error {
	var api smithy.APIError
	if errors.As(err, &api) {
		return fmt.Errorf("%s on %s: %w", api.ErrorCode(), ref, err)
	}
	return fmt.Errorf("listing %s: %w", ref, err)
}
