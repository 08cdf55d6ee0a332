package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/gate"
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

// Scan answers as ECR would for fixedLister's images: qa-sha-1a2b3c4 has
// a CRITICAL finding, the others clean scans.
func (fixedLister) Scan(_ context.Context, _ policy.ImageRef, digest string) (gate.ScanResult, error) {
	if digest == "sha256:1a2b3c4000000000000000" {
		return gate.ScanResult{Status: "COMPLETE", Counts: map[string]int32{"CRITICAL": 1}}, nil
	}
	return gate.ScanResult{Status: "COMPLETE"}, nil
}

func TestCheckGolden(t *testing.T) {
	var gotAWS config.AWS
	newLister = func(_ context.Context, a config.AWS) (scanner.Lister, error) { gotAWS = a; return fixedLister{}, nil }
	tests := []struct {
		name   string
		args   []string
		code   int
		golden string
	}{
		{"seed", []string{"check", "--region", "us-east-2", "../../gitwriter/testdata/seed/original"}, 0, "testdata/check-seed.golden"},
		{"errors", []string{"check", "--region", "us-east-2", "testdata/check/bad", "../../gitwriter/testdata/unknown-policy/original", "testdata/check/namespace"}, 1, "testdata/check-errors.golden"},
		{"budget", []string{"check", "--config", "testdata/check-budget.yaml", "../../gitwriter/testdata/seed/original"}, 0, "testdata/check-budget.golden"},
		{"ecr", []string{"check", "--ecr", "--candidates", "3", "--config", "testdata/check-ecr.yaml", "../../gitwriter/testdata/seed/original"}, 0, "testdata/check-ecr.golden"},
		{"ecr held", []string{"check", "--ecr", "--candidates", "2", "--config", "testdata/check-ecr.yaml", "testdata/check/held"}, 0, "testdata/check-ecr-held.golden"},
		{"ecr gates", []string{"check", "--ecr", "--candidates", "2", "--config", "testdata/check-ecr-gates.yaml", "../../gitwriter/testdata/seed/original"}, 0, "testdata/check-ecr-gates.golden"},
		{"ecr errors", []string{"check", "--ecr", "--config", "testdata/check-ecr.yaml", "testdata/check/bad", "testdata/check/denied"}, 1, "testdata/check-ecr-errors.golden"},
		// No configuration file: the AWS settings of the flags (a minimal
		// start, and a parity check against Flux with --output json).
		{"ecr without config", []string{"check", "--ecr", "--candidates", "3", "--region", "us-east-2", "--endpoint", "http://127.0.0.1:5000", "../../gitwriter/testdata/seed/original"}, 0, "testdata/check-ecr.golden"},
		// Each repository's shard, and the Lease its work follows.
		{"check-config cluster", []string{"check-config", "--config", "testdata/cluster.yaml"}, 0, "testdata/check-config-cluster.golden"},
		{"ecr json", []string{"check", "--ecr", "--candidates", "2", "--output", "json", "--config", "testdata/check-ecr-gates.yaml", "../../gitwriter/testdata/seed/original", "testdata/check/denied"}, 1, "testdata/check-ecr-json.golden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// "ecr without config" shares ecr's golden: it is not rewritten.
			runGolden(t, tt.args, tt.code, tt.golden, tt.name != "ecr without config", nil)
			if tt.name == "ecr without config" && (gotAWS.Region != "us-east-2" || gotAWS.Endpoint != "http://127.0.0.1:5000" || gotAWS.MaxPages != config.DefaultMaxPages) {
				t.Errorf("AWS settings without a config: %+v", gotAWS)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		nil, {"frobnicate"}, {"check"}, {"check", "--output", "yaml", "."}, {"check", "--config", "x.yaml", "--endpoint", "http://localhost:5000", "."}, {"once", "--no-such-flag"},
		{"once", "extra"}, {"run", "--config", "x.yaml", "extra"}, {"version", "x"},
		{"check", "apps/", "--no-such-flag"},
	} {
		err := run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{})
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 {
			t.Errorf("run(%q) = %v, want exit code 2", args, err)
		}
	}
}

// Help on every command goes to stdout and exits 0; the top-level usage
// names every command and every flag.
func TestHelp(t *testing.T) {
	var all bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, &all, &bytes.Buffer{}); err != nil {
		t.Fatalf("--help: %v", err)
	}
	for _, c := range commands {
		for _, args := range [][]string{{c.name, "-h"}, {c.name, "--help"}, {c.name, "--config", "x.yaml", "--help"}} {
			if c.name == "version" && len(args) > 2 {
				continue
			}
			var out, errb bytes.Buffer
			if err := run(context.Background(), args, &out, &errb); err != nil {
				t.Errorf("run(%q) = %v, want nil", args, err)
			}
			if !strings.HasPrefix(out.String(), "imagebutler "+c.name) || errb.Len() > 0 {
				t.Errorf("run(%q): stdout %q, stderr %q", args, out.String(), errb.String())
			}
		}
		if !strings.Contains(all.String(), "imagebutler "+c.name) {
			t.Errorf("usage lacks command %s:\n%s", c.name, all.String())
		}
		fs := c.flagSet()
		c.define(fs, io.Discard, io.Discard)
		fs.VisitAll(func(f *flag.Flag) {
			if !strings.Contains(all.String(), "-"+f.Name) {
				t.Errorf("usage lacks %s --%s", c.name, f.Name)
			}
		})
	}
	var errb bytes.Buffer
	if err := run(context.Background(), nil, &bytes.Buffer{}, &errb); err == nil || !strings.Contains(errb.String(), "Commands:") {
		t.Errorf("no command: err %v, stderr %q", err, errb.String())
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var out bytes.Buffer
		if err := run(context.Background(), args, &out, &bytes.Buffer{}); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf(", %s, %s/%s)\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
		if !strings.HasPrefix(out.String(), "imagebutler ") || !strings.Contains(out.String(), " (commit ") || !strings.HasSuffix(out.String(), want) {
			t.Errorf("run(%q) printed %q", args, out.String())
		}
	}
}

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args       []string
		region     string
		ecr        bool
		positional []string
	}{
		{[]string{"apps/", "--region", "us-east-2"}, "us-east-2", false, []string{"apps/"}},
		{[]string{"--region", "us-east-2", "apps/", "infra/"}, "us-east-2", false, []string{"apps/", "infra/"}},
		{[]string{"apps/", "--ecr", "infra/", "--region=eu-west-1"}, "eu-west-1", true, []string{"apps/", "infra/"}},
		{[]string{"apps/", "--", "--region", "-odd"}, "", false, []string{"apps/", "--region", "-odd"}},
		{nil, "", false, nil},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("check", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		region := fs.String("region", "", "")
		ecr := fs.Bool("ecr", false, "")
		got, err := parseInterspersed(fs, tt.args)
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if *region != tt.region || *ecr != tt.ecr || !slices.Equal(got, tt.positional) {
			t.Errorf("%q: region %q ecr %v positional %q; want %q %v %q", tt.args, *region, *ecr, got, tt.region, tt.ecr, tt.positional)
		}
	}
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := parseInterspersed(fs, []string{"apps/", "-x"}); err == nil {
		t.Error("an unknown flag after a DIR was taken as a DIR")
	}
}

// In a git repository, check --ecr also shows a person's revert of the
// butler's write, read from the butler's commit trailer.
func TestCheckShowsRevert(t *testing.T) {
	newLister = func(context.Context, config.AWS) (scanner.Lister, error) { return fixedLister{}, nil }
	dir := t.TempDir()
	cfg, _ := os.ReadFile("testdata/check-ecr.yaml")
	configFile := filepath.Join(t.TempDir(), "imagebutler.yaml")
	os.WriteFile(configFile, cfg, 0o644)
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=A Person", "-c", "user.email=person@example.com"}, args...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	manifest := func(tag string) {
		os.WriteFile(filepath.Join(dir, "app.yaml"), []byte(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: bartender
  namespace: falcon-qa
  annotations:
    app.lilly.com/flux.automated: "true"
    app.lilly.com/flux.simple.p: "283234040926;lrl_falcon_bartender;glob:qa-sha-*"
spec:
  template:
    spec:
      containers:
        - image: 283234040926.dkr.ecr.us-east-2.amazonaws.com/lrl_falcon_bartender:`+tag+` # {"$imagepolicy": "falcon-qa:p"}
`), 0o644)
	}
	git("init", "--quiet")
	manifest("qa-sha-06c5953")
	git("add", "app.yaml")
	git("commit", "--quiet", "-m", "seed")
	manifest("qa-sha-1a2b3c4")
	git("-c", "user.email=butler@example.com", "commit", "--quiet", "-am", "Update falcon-qa:p\n\nImagebutler-Set: falcon-qa:p=qa-sha-1a2b3c4")
	git("revert", "--no-edit", "HEAD")

	var out bytes.Buffer
	if err := run(context.Background(), []string{"check", "--ecr", "--config", configFile, dir}, &out, &bytes.Buffer{}); err != nil {
		t.Fatalf("check: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "held app.yaml:13 (revert): ") || !strings.Contains(out.String(), "changed falcon-qa:p from qa-sha-1a2b3c4") {
		t.Errorf("check --ecr does not show the revert:\n%s", out.String())
	}
}

func TestCheckConfig(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"check-config", "--config", "testdata/check-ecr.yaml"}, &out, &bytes.Buffer{}); err != nil || out.String() != "testdata/check-ecr.yaml: valid, 1 repositories, schedule @every 1m\n" {
		t.Errorf("valid config: err %v, out %q", err, out.String())
	}
	err := run(context.Background(), []string{"check-config", "--config", "../../config/testdata/many-problems.yaml"}, &bytes.Buffer{}, &bytes.Buffer{})
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 || strings.Count(err.Error(), "\n") != 3 {
		t.Errorf("invalid config: %v, want exit 2 with its four problems", err)
	}
}

// TestCheckConfigReadsSignatureTrust: the key and trusted root files of
// signature gates are read at start: a missing or broken one is a config
// error naming the gate, not a gate that refuses every image later.
func TestCheckConfigReadsSignatureTrust(t *testing.T) {
	err := run(context.Background(), []string{"check-config", "--config", "testdata/bad-signature-files.yaml"}, &bytes.Buffer{}, &bytes.Buffer{})
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 2 {
		t.Fatalf("check-config = %v, want exit 2", err)
	}
	for _, want := range []string{
		"testdata/bad-signature-files.yaml: gates.signature: reading the public key testdata/no-such-cosign.pub: open testdata/no-such-cosign.pub: no such file or directory",
		"testdata/bad-signature-files.yaml: repositories[1] (/srv/git/other@main): gates.signature: reading the trusted root testdata/check-ecr.yaml: failed to proto-json unmarshal trusted root",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("check-config error lacks %q:\n%v", want, err)
		}
	}
}

// runGolden runs the command args, checks its exit code, and compares its
// stdout (through clean, when not nil) with the golden file, which -update
// rewrites when rewrite is true.
func runGolden(t *testing.T, args []string, wantCode int, golden string, rewrite bool, clean func([]byte) []byte) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	code := 0
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	} else if err != nil {
		t.Fatal(err)
	}
	if code != wantCode {
		t.Errorf("exit code %d, want %d (%v; stderr %s)", code, wantCode, err, errb.String())
	}
	got := out.Bytes()
	if clean != nil {
		got = clean(got)
	}
	if *update && rewrite {
		os.WriteFile(golden, got, 0o644)
	}
	want, _ := os.ReadFile(golden)
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s output (-want +got):\n%s", args[0], diff)
	}
}
