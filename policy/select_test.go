package policy

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCompileGlob(t *testing.T) {
	tests := []struct {
		glob, tag string
		want      bool
	}{
		{"sha-.*", "sha-06c5953", true},
		{"sha-*", "sha-06c5953", true},
		{"sha-.*", "qa-sha-06c5953", false},
		{"sha-*", "qa-sha-06c5953", false},
		{"qa-sha-.*", "qa-sha-06c5953", true},
		{"v?.0", "v1.0", true},
		{"v?.0", "v10.0", false},
		{"v1.0", "v1x0", false}, // '.' is literal
		{"1.2.*", "1.2.3", true},
		{"1.2.*", "1x2.3", false}, // the first "." is literal
		{"a+b", "a+b", true},
		{"a+b", "aab", false},
		{"*", "", true},
		{"sha-.*", "sha-", true},
	}
	for _, tt := range tests {
		if got := CompileGlob(tt.glob).MatchString(tt.tag); got != tt.want {
			t.Errorf("CompileGlob(%q).MatchString(%q) = %v, want %v", tt.glob, tt.tag, got, tt.want)
		}
	}
}

func at(sec int) time.Time { return time.Unix(1_700_000_000+int64(sec), 0).UTC() }

func mustParse(t *testing.T, filter string) *Policy {
	t.Helper()
	ps, errs := Parse(map[string]string{AutomatedKey: "true", SimplePrefix + "p": "283234040926;lrl_x;" + filter}, "ns", "us-east-2")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return ps[0]
}

func TestSelect(t *testing.T) {
	images := []Image{
		{Tags: []string{"qa-sha-aaaaaaa"}, Digest: "sha256:01", PushedAt: at(1)},
		{Tags: []string{"qa-sha-ccccccc", "latest"}, Digest: "sha256:03", PushedAt: at(3)},
		{Tags: []string{"sha-bbbbbbb"}, Digest: "sha256:02", PushedAt: at(2)},
		{Tags: []string{"sha256-03.sig"}, Digest: "sha256:04", PushedAt: at(9)},
		{Tags: []string{"v1.2.0", "v1.10.0-rc.1"}, Digest: "sha256:05", PushedAt: at(0)},
		{Tags: []string{"1.9.3"}, Digest: "sha256:06", PushedAt: at(0)},
	}
	tests := []struct {
		filter string
		want   Result
	}{
		{"glob:qa-sha-.*", Result{Tag: "qa-sha-ccccccc", Digest: "sha256:03", PushedAt: at(3), Seen: 8, Excluded: 1, Filtered: 5}},
		{"glob:sha-*", Result{Tag: "sha-bbbbbbb", Digest: "sha256:02", PushedAt: at(2), Seen: 8, Excluded: 1, Filtered: 6}},
		{"glob:*", Result{Tag: "qa-sha-ccccccc", Digest: "sha256:03", PushedAt: at(3), Seen: 8, Excluded: 1}}, // tie at(3): greatest tag
		{"regexp:sha-b", Result{Tag: "sha-bbbbbbb", Digest: "sha256:02", PushedAt: at(2), Seen: 8, Excluded: 1, Filtered: 6}},
		{"semver:>=1.0.0", Result{Tag: "1.9.3", Digest: "sha256:06", PushedAt: at(0), Seen: 8, Excluded: 1, Filtered: 1, Unparsable: 4}},
		{"semver:>=1.0.0-0", Result{Tag: "v1.10.0-rc.1", Digest: "sha256:05", PushedAt: at(0), Seen: 8, Excluded: 1, Unparsable: 4}},
		{"glob:prod-*", Result{Seen: 8, Excluded: 1, Filtered: 7}},
	}
	for _, tt := range tests {
		got := mustParse(t, tt.filter).Select(images)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Select with %s (-want +got):\n%s", tt.filter, diff)
		}
	}
}

func TestSelectTieGoesToGreatestTag(t *testing.T) {
	p := mustParse(t, "glob:*")
	for _, images := range [][]Image{
		{{Tags: []string{"b"}, PushedAt: at(1)}, {Tags: []string{"a"}, PushedAt: at(1)}},
		{{Tags: []string{"a"}, PushedAt: at(1)}, {Tags: []string{"b"}, PushedAt: at(1)}},
		{{Tags: []string{"a", "b"}, PushedAt: at(1)}},
	} {
		if got := p.Select(images).Tag; got != "b" {
			t.Errorf("Select(%v) = %q, want b", images, got)
		}
	}
}

func TestReason(t *testing.T) {
	tests := []struct {
		r    Result
		want string
	}{
		{Result{Tag: "x"}, ""},
		{Result{}, "the ECR repository has no tagged images"},
		{Result{Seen: 8, Excluded: 1, Filtered: 7}, "no tag qualified: of 8 tags, 1 excluded, 7 did not match the filter"},
	}
	for _, tt := range tests {
		if got := tt.r.Reason(); got != tt.want {
			t.Errorf("%+v.Reason() = %q, want %q", tt.r, got, tt.want)
		}
	}
}
