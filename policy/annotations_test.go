package policy

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite the want sections of testdata/annotations")

// wantMarker separates a case's input from what Parse must return.
const wantMarker = "# ---- want ----\n"

// TestParseAnnotations runs every testdata/annotations case: the YAML input
// (namespace, optional region, annotations), then after wantMarker the
// policies, errors and warnings Parse returns, one per line.
func TestParseAnnotations(t *testing.T) {
	files, err := filepath.Glob("testdata/annotations/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			input, want, _ := strings.Cut(string(data), wantMarker)
			var in struct {
				Namespace   string            `yaml:"namespace"`
				Region      *string           `yaml:"region"`
				Annotations map[string]string `yaml:"annotations"`
			}
			if err := yaml.Unmarshal([]byte(input), &in); err != nil {
				t.Fatal(err)
			}
			region := "us-east-2"
			if in.Region != nil {
				region = *in.Region
			}
			policies, errs := Parse(in.Annotations, in.Namespace, region)
			got := describe(policies, errs)
			if *update {
				if !strings.HasSuffix(input, "\n") {
					input += "\n"
				}
				if err := os.WriteFile(file, []byte(input+wantMarker+got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

func describe(policies []*Policy, errs []error) string {
	var b strings.Builder
	for _, p := range policies {
		fmt.Fprintf(&b, "policy %s image=%s filter=%q order=%q", p.ID, p.Image.Name(), p.Filter(), p.Ordering())
		if p.DigestReflection != "" {
			fmt.Fprintf(&b, " digestReflection=%s", p.DigestReflection)
		}
		if p.Hold != "" {
			fmt.Fprintf(&b, " hold=%q", p.Hold)
		}
		if p.Image.Charts {
			b.WriteString(" charts")
		}
		if g := p.Gate; g != nil {
			fmt.Fprintf(&b, " gate={minAge=%s maxSeverity=%q scanRequired=%t signed=%t key=%s}", g.MinAge, g.MaxSeverity, g.ScanRequired, g.Signed, g.Key)
		}
		if p.InjectCreatedAt {
			b.WriteString(" injectCreatedAt")
		}
		if len(p.Exclusions) != 1 || p.Exclusions[0] != DefaultExclusion {
			fmt.Fprintf(&b, " exclude=%q", p.Exclusions)
		}
		fmt.Fprintf(&b, " key=%s\n", p.Key)
	}
	for _, err := range errs {
		kind := "error"
		var ae *AnnotationError
		if errors.As(err, &ae) && ae.Warning {
			kind = "warning"
		}
		fmt.Fprintf(&b, "%s %v\n", kind, err)
	}
	return b.String()
}
