package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/gate"
	"github.com/imagebutler/imagebutler/ghapp"
	"github.com/imagebutler/imagebutler/gitwriter"
	"github.com/imagebutler/imagebutler/policy"
	"github.com/imagebutler/imagebutler/scanner"
	"github.com/imagebutler/imagebutler/signature"
)

// registryLogin gives an ECR registry's credentials.
type registryLogin interface {
	RegistryLogin(ctx context.Context, ref policy.ImageRef) (user, password string, err error)
}

// newVerifier is the signature gate's verifier: it reads signatures from
// the ECR registry of each image with lister's credentials (where lister
// gives some; anonymously otherwise), and the public keys of cfg's KMS
// keys from KMS. cfg may be nil.
func newVerifier(ctx context.Context, lister scanner.Lister, cfg *config.Config, log *slog.Logger) (gate.Verifier, error) {
	v := &signature.Verifier{}
	if l, ok := lister.(registryLogin); ok {
		v.Auth = func(ctx context.Context, ref policy.ImageRef) (authn.Authenticator, error) {
			user, password, err := l.RegistryLogin(ctx, ref)
			if err != nil {
				return nil, err
			}
			return &authn.Basic{Username: user, Password: password}, nil
		}
	}
	if cfg != nil && usesKMS(cfg) {
		k, err := signature.NewKMS(ctx, cfg.AWS, scanner.SDKLogger(log))
		if err != nil {
			return nil, err
		}
		v.PublicKey = k.PublicKey
	}
	return v, nil
}

// usesKMS says whether a signature gate of cfg trusts a KMS key.
func usesKMS(cfg *config.Config) bool {
	gates := []*config.Gates{&cfg.Gates}
	for _, r := range cfg.Repositories {
		gates = append(gates, r.Gates)
	}
	for _, g := range gates {
		if g == nil || g.Signature == nil {
			continue
		}
		for _, k := range g.Signature.Keys {
			if _, ok := config.KMSKeyARN(k); ok {
				return true
			}
		}
	}
	return false
}

// loadConfig loads the config file and reads the files of its signature
// gates (keys, trusted roots): an error in either is a config error.
func loadConfig(file string) (*config.Config, error) {
	cfg, err := config.Load(file)
	if err != nil {
		return nil, err
	}
	var errs []error
	// The signing key is read again at each commit (a rotated key is used
	// at once); read here, a broken one is a config error at start.
	if _, err := gitwriter.LoadSigner(cfg.Git.SigningKey()); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", file, err))
	}
	if g := cfg.Gates.Signature; g != nil {
		if err := signature.CheckTrust(g); err != nil {
			errs = append(errs, fmt.Errorf("%s: gates.signature: %w", file, err))
		}
	}
	for i, r := range cfg.Repositories {
		if app := r.Auth.GitHubApp; app != nil {
			if _, err := ghapp.ReadKey(app.PrivateKeyFile); err != nil {
				errs = append(errs, fmt.Errorf("%s: repositories[%d] (%s): %w", file, i, r.Name(), err))
			}
		}
	}
	for i, r := range cfg.Repositories {
		if r.Gates == nil || r.Gates.Signature == nil {
			continue
		}
		if err := signature.CheckTrust(r.Gates.Signature); err != nil {
			errs = append(errs, fmt.Errorf("%s: repositories[%d] (%s): gates.signature: %w", file, i, r.Name(), err))
		}
	}
	return cfg, errors.Join(errs...)
}
