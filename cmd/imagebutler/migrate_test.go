package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/scanner"
)

// migrate flux on the objects of Flux's image automation guide (and a
// List in JSON with the fields that do not carry over): the config it
// writes passes check-config, every warning is in the golden file, and
// the planted difference (an ImagePolicy whose recorded tag lags) is
// reported with exit code 1.
func TestMigrateFluxGolden(t *testing.T) {
	newLister = func(context.Context, config.AWS) (scanner.Lister, error) { return fixedLister{}, nil }
	written := filepath.Join(t.TempDir(), "imagebutler.yaml")
	files := []string{"testdata/migrate/flux-guide.yaml", "testdata/migrate/flux-custom.json"}
	for _, tt := range []struct {
		name   string
		args   []string
		code   int
		golden string
	}{
		{"text", append([]string{"migrate", "flux", "--ecr", "--region", "us-east-2"}, files...), 1, "testdata/migrate-flux.golden"},
		{"json", append([]string{"migrate", "flux", "--ecr", "--region", "us-east-2", "--output", "json", "--write", written}, files...), 1, "testdata/migrate-flux-json.golden"},
		{"offline", []string{"migrate", "flux", "testdata/migrate/flux-guide.yaml"}, 0, "testdata/migrate-flux-offline.golden"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			runGolden(t, tt.args, tt.code, tt.golden, true, func(b []byte) []byte { return bytes.ReplaceAll(b, []byte(written), []byte("WRITTEN")) })
		})
	}
	// The config written passes check-config.
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"check-config", "--config", written}, &out, &errb); err != nil {
		t.Errorf("check-config on the written config: %v\n%s%s", err, out.String(), errb.String())
	}
}

func TestMigrateUsage(t *testing.T) {
	for _, args := range [][]string{{"migrate"}, {"migrate", "flux"}, {"migrate", "argo", "x.yaml"}, {"migrate", "flux", "--output", "xml", "x.yaml"}, {"migrate", "flux", "missing.yaml"}} {
		err := run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{})
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 {
			t.Errorf("run(%q) = %v, want exit code 2", args, err)
		}
	}
}
