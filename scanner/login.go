package scanner

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/imagebutler/imagebutler/policy"
)

// loginAPI is the part of ECR's client that gives registry credentials.
type loginAPI interface {
	GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, opts ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error)
}

// registryLogin keeps one registry's credentials.
type registryLogin struct {
	mu             sync.Mutex
	user, password string
	renew          time.Time
}

// loginMargin is how long before its expiry a token is renewed: ECR's last
// twelve hours, and a registry call must not start on one about to end.
const loginMargin = 30 * time.Minute

// RegistryLogin returns the user and password of ref's registry (the
// signatures stored next to its images are read with them), from ECR's
// GetAuthorizationToken, kept until half an hour before they expire. The
// password is a secret: it is never logged.
func (e *ECR) RegistryLogin(ctx context.Context, ref policy.ImageRef) (user, password string, err error) {
	c := e.client(ref.Account, ref.Region)
	api, ok := c.api.(loginAPI)
	if !ok {
		return "", "", errors.New("this ECR client gives no registry credentials")
	}
	c.login.mu.Lock()
	defer c.login.mu.Unlock()
	if c.login.password != "" && time.Now().Before(c.login.renew) {
		return c.login.user, c.login.password, nil
	}
	release, err := e.admit(ctx, c)
	if err != nil {
		return "", "", err
	}
	out, err := api.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	release()
	if err != nil {
		return "", "", fmt.Errorf("ECR GetAuthorizationToken in account %s, %s: %w", ref.Account, ref.Region, err)
	}
	if len(out.AuthorizationData) == 0 {
		return "", "", fmt.Errorf("ECR GetAuthorizationToken in account %s, %s: no authorization data", ref.Account, ref.Region)
	}
	d := out.AuthorizationData[0]
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(d.AuthorizationToken))
	user, password, found := strings.Cut(string(raw), ":")
	if err != nil || !found || password == "" {
		return "", "", fmt.Errorf("ECR GetAuthorizationToken in account %s, %s: the token is not base64 of user:password", ref.Account, ref.Region)
	}
	renew := time.Now().Add(time.Hour)
	if d.ExpiresAt != nil {
		renew = d.ExpiresAt.Add(-loginMargin)
	}
	c.login.user, c.login.password, c.login.renew = user, password, renew
	return user, password, nil
}
