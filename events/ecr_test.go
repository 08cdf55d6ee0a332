package events

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/parse.golden")

// TestParseECR reads every event in testdata and compares what ParseECR
// makes of it with testdata/parse.golden. No error echoes a secret from
// the body.
func TestParseECR(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	txt, _ := filepath.Glob("testdata/*.txt")
	files = append(files, txt...)
	sort.Strings(files)
	var out strings.Builder
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p, err := ParseECR(body, "")
		fmt.Fprintf(&out, "%s:\n", filepath.Base(f))
		switch {
		case errors.Is(err, ErrNotPush):
			fmt.Fprintf(&out, "  not a push: %v\n", err)
		case err != nil:
			fmt.Fprintf(&out, "  error: %v\n", err)
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("%s: the error echoes the body: %v", f, err)
			}
		default:
			fmt.Fprintf(&out, "  push: %s tag %s digest %s time %s\n", p.Ref.Name(), p.Tag, p.Digest, p.Time.Format(time.RFC3339Nano))
		}
	}
	if *update {
		os.WriteFile("testdata/parse.golden", []byte(out.String()), 0o644)
	}
	want, _ := os.ReadFile("testdata/parse.golden")
	if out.String() != string(want) {
		t.Errorf("ParseECR output differs from testdata/parse.golden (go test ./events -update rewrites it):\n%s", out.String())
	}
}
