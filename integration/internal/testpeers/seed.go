package testpeers

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
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
const SeedDeployment = `---
# The bartender serves drinks in QA.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: bartender
  namespace: falcon-qa
  annotations:
    app.lilly.com/flux.automated: "true"
    app.lilly.com/flux.simple.my-policy-bartender: "283234040926;lrl_falcon_bartender;glob:qa-sha-.*"
    # Example: app.lilly.com/flux.simple.docs-policy: "283234040926;lrl_light_k8s_infra_apps_catsdocs;glob:sha-.*"
    wave.pusher.com/update-on-config-change: "true"
spec:
  replicas: 2
  selector:
    matchLabels: {app: bartender}
  template:
    metadata:
      labels: {app: bartender}
    spec:
      containers:

        - name: bartender
          image: 283234040926.dkr.ecr.us-east-2.amazonaws.com/lrl_falcon_bartender:qa-sha-06c5953 # {"$imagepolicy": "falcon-qa:my-policy-bartender"}
          ports:
            - containerPort: 8080   # http
`

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
