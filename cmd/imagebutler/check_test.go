package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestCheckGolden(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		golden string
	}{
		{"seed", []string{"check", "--region", "us-east-2", "../../gitwriter/testdata/seed/original"}, 0, "testdata/check-seed.golden"},
		{"errors", []string{"check", "--region", "us-east-2", "testdata/check/bad", "../../gitwriter/testdata/unknown-policy/original"}, 1, "testdata/check-errors.golden"},
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
	for _, args := range [][]string{nil, {"frobnicate"}, {"check"}, {"once", "--no-such-flag"}} {
		err := run(context.Background(), args, &bytes.Buffer{}, &bytes.Buffer{})
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 {
			t.Errorf("run(%q) = %v, want exit code 2", args, err)
		}
	}
}
