package signature

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"github.com/aws/smithy-go/logging"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/imagebutler/imagebutler/config"
)

// KMS reads the public keys of AWS KMS signing keys (cosign's awskms://
// keys) with GetPublicKey, in each key's region, with the same AWS identity
// and endpoint as the ECR calls.
type KMS struct {
	base     aws.Config
	endpoint string

	mu      sync.Mutex
	clients map[string]*kms.Client
}

// NewKMS loads the AWS identity the SDK's default way; the SDK's own
// messages go to logger (nil: the SDK's default).
func NewKMS(ctx context.Context, settings config.AWS, logger logging.Logger) (*KMS, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if settings.Region != "" {
		opts = append(opts, awsconfig.WithRegion(settings.Region))
	}
	base, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if logger != nil {
		base.Logger = logger
	}
	return &KMS{base: base, endpoint: settings.Endpoint, clients: map[string]*kms.Client{}}, nil
}

// PublicKey returns the public key of the KMS key keyARN.
func (k *KMS) PublicKey(ctx context.Context, keyARN string) (crypto.PublicKey, error) {
	parts := strings.Split(keyARN, ":")
	if len(parts) < 6 {
		return nil, fmt.Errorf("%q is not a KMS key ARN", keyARN)
	}
	out, err := k.client(parts[3]).GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(keyARN)})
	if err != nil {
		return nil, fmt.Errorf("KMS GetPublicKey: %w", err)
	}
	pub, err := x509.ParsePKIXPublicKey(out.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("KMS GetPublicKey: the key is not a public key in DER form: %w", err)
	}
	return pub, nil
}

func (k *KMS) client(region string) *kms.Client {
	k.mu.Lock()
	defer k.mu.Unlock()
	c, ok := k.clients[region]
	if !ok {
		cfg := k.base.Copy()
		cfg.Region = region
		c = kms.NewFromConfig(cfg, func(o *kms.Options) {
			if k.endpoint != "" {
				o.BaseEndpoint = aws.String(k.endpoint)
			}
		})
		k.clients[region] = c
	}
	return c
}
