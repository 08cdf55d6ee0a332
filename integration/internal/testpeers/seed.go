package testpeers

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/imagebutler/imagebutler/deploy/localstack/example"
)

// The seed guide's example, as the integration tests and the demo use it.
const (
	SeedAccount    = "283234040926"
	SeedRegion     = "us-east-2"
	SeedRepository = "lrl_falcon_bartender"
	SeedImage      = SeedAccount + ".dkr.ecr." + SeedRegion + ".amazonaws.com/" + SeedRepository
	SeedOldTag     = "qa-sha-06c5953"
	// SeedNewestTag is pushed last among the tags matching glob:qa-sha-.*;
	// it is not the alphabetically greatest.
	SeedNewestTag = "qa-sha-1a2b3c4"
)

// SeedDeployment is the seed guide's Deployment, with the simple annotation
// and the $imagepolicy marker, pointing at SeedOldTag.
var SeedDeployment = example.Deployment

// SeedECR creates the seed repository under the seed account and pushes
// an older qa-sha tag that sorts last, the tag the Deployment holds and a
// tag that does not match, then, more than a second later (moto keeps whole
// seconds), SeedNewestTag.
func SeedECR(ctx context.Context, c *ecr.Client) error {
	if err := CreateRepository(ctx, c, SeedAccount, SeedRepository); err != nil {
		return err
	}
	for _, tag := range []string{"qa-sha-fffffff", SeedOldTag, "sha-0aa11bb", SeedNewestTag} {
		if tag == SeedNewestTag {
			time.Sleep(1100 * time.Millisecond)
		}
		if _, err := PushImage(ctx, c, SeedAccount, SeedRepository, tag); err != nil {
			return err
		}
	}
	return nil
}
