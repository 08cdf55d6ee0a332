package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/policy"
	"github.com/imagebutler/imagebutler/scanner"
)

var update = flag.Bool("update", false, "rewrite golden files")

// fixedLister serves fixed images for every ECR repository but one.
type fixedLister struct{}

func (fixedLister) List(_ context.Context, ref policy.ImageRef) ([]policy.Image, error) {
	if ref.Repository == "shop_api" {
		return nil, errors.New("AccessDeniedException on " + ref.String() + ": not authorized")
	}
	at := func(s int) time.Time { return time.Date(2026, 11, 26, 10, 0, s, 0, time.UTC) }
	return []policy.Image{
		{Tags: []string{"qa-sha-fffffff"}, Digest: "sha256:ffffffffffffffffffffffff", PushedAt: at(1)},
		{Tags: []string{"qa-sha-06c5953", "sha-06c5953"}, Digest: "sha256:06c5953000000000000000", PushedAt: at(2)},
		{Tags: []string{"sha256-06c5953.sig"}, Digest: "sha256:5160000000000000000000", PushedAt: at(3)},
		{Tags: []string{"qa-sha-1a2b3c4"}, Digest: "sha256:1a2b3c4000000000000000", PushedAt: at(4)},
		{Tags: []string{"latest"}, Digest: "sha256:1a2b3c4000000000000000", PushedAt: at(4)},
	}, nil
}

func TestCheckGolden(t *testing.T) {
	newLister = func(context.Context, config.AWS) (scanner.Lister, error) { return fixedLister{}, nil }
	tests := []struct {
		name   string
		args   []string
		code   int
		golden string
	}{
		{"seed", []string{"check", "--region", "us-east-2", "../../gitwriter/testdata/seed/original"}, 0, "testdata/check-seed.golden"},
		{"errors", []string{"check", "--region", "us-east-2", "testdata/check/bad", "../../gitwriter/testdata/unknown-policy/original"}, 1, "testdata/check-errors.golden"},
		{"ecr", []string{"check", "--ecr", "--candidates", "3", "--config", "testdata/check-ecr.yaml", "../../gitwriter/testdata/seed/original"}, 0, "testdata/check-ecr.golden"},
		{"ecr errors", []string{"check", "--ecr", "--config", "testdata/check-ecr.yaml", "testdata/check/bad", "testdata/check/denied"}, 1, "testdata/check-ecr-errors.golden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tt.args, &out, &errb)
			code := 0
			var ee *exitError
			if errors.As(err, &ee) {
				code = ee.code
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code {
				t.Errorf("exit code %d, want %d (stderr %s)", code, tt.code, errb.String())
			}
			if *update {
				os.WriteFile(tt.golden, out.Bytes(), 0o644)
			}
			want, _ := os.ReadFile(tt.golden)
			if diff := cmp.Diff(string(want), out.String()); diff != "" {
				t.Errorf("check output (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"frobnicate"}, {"check"}, {"check", "--ecr", "."}, {"once", "--no-such-flag"}} {
		err := run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{})
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 {
			t.Errorf("run(%q) = %v, want exit code 2", args, err)
		}
	}
}
