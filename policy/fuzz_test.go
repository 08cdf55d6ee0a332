package policy

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/Masterminds/semver/v3"
)

// FuzzParseSimple: any annotation value parses or fails cleanly, and a
// parsed policy selects without panicking.
func FuzzParseSimple(f *testing.F) {
	for _, s := range []string{
		"283234040926;lrl_falcon_bartender;glob:qa-sha-.*",
		"408787358807.dkr.ecr.eu-west-1.amazonaws.com;team/web;regexp:^v[0-9]+$",
		" 474366589702 ; lrl_web ; semver:>=1.0.0-0 ",
		"283234040926;lrl_x;wildcard:*", ";;", "a;b;c;d",
	} {
		f.Add(s, "qa-sha-1234567")
	}
	f.Fuzz(func(t *testing.T, value, tag string) {
		ps, errs := Parse(map[string]string{AutomatedKey: "true", SimplePrefix + "p": value}, "ns", "us-east-2")
		if len(ps)+len(errs) != 1 {
			t.Fatalf("Parse(%q) = %d policies, %d errors; want exactly one of either", value, len(ps), len(errs))
		}
		for _, p := range ps {
			r := p.Select([]Image{{Tags: []string{tag, tag + ".sig"}}})
			if r.Seen != 2 || r.Excluded+r.Filtered+r.Unparsable+btoi(r.OK()) != 2 {
				t.Fatalf("Select counts do not add up: %+v", r)
			}
		}
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// FuzzCustom: any pair of custom annotations parses or fails cleanly;
// errors that name a position name one inside the text.
func FuzzCustom(f *testing.F) {
	f.Add(`[{"name": "repo-1", "image": "408787358807.dkr.ecr.us-east-2.amazonaws.com/flux-testing", "injectCreatedAt": "true", "provider": "aws", "policies": ["policy-1"]}]`,
		`[{"name": "policy-1", "policy": {"alphabetical": {"order": "asc"}}, "filterTags": {"pattern": "^dev-(?P<timestamp>\d+)$", "extract": "$timestamp"}}]`)
	f.Add(`[{"name": "a", "image": "474366589702.dkr.ecr.us-east-1.amazonaws.com/a", "policies": ["p"], "exclusionList": ["^x$"]}]`,
		`[{"name": "p", "policy": {"numerical": {"order": "desc"}}, "filterTags": {"pattern": "(\d+)", "extract": "$1-$createdAt"}}]`)
	f.Add(`[{"provider": "aws", optional}]`, `[`)
	f.Fuzz(func(t *testing.T, repos, policies string) {
		ps, _ := Parse(map[string]string{AutomatedKey: "true", CustomReposKey: repos, CustomPolicyKey: policies}, "ns", "")
		for _, p := range ps {
			p.Select([]Image{{Tags: []string{"dev-1", "1.0.0", "v2"}}})
		}
	})
}

// FuzzDecodeLenient: the lenient reader never panics, and the line and
// column it reports fall inside the text.
func FuzzDecodeLenient(f *testing.F) {
	f.Add(`["a\d", "b\\", "c\u0041"]`)
	f.Add("[\n  {\"x\": 1}, optional\n]")
	f.Add(`"\`)
	f.Fuzz(func(t *testing.T, text string) {
		var v any
		_, err := decodeLenient(text, &v, nil)
		if err == nil {
			return
		}
		var line, col int
		if n, _ := sscanPosition(err.Error(), &line, &col); n == 2 {
			lines := strings.Split(text, "\n")
			if line < 1 || line > len(lines) || col < 1 || col > len([]rune(lines[line-1]))+1 {
				t.Fatalf("error %q points outside the text %q", err, text)
			}
		}
	})
}

// FuzzGlob: a glob never panics and agrees with its regexp translation.
func FuzzGlob(f *testing.F) {
	f.Add("sha-.*", "sha-06c5953")
	f.Add("*-*-rc?", "a-b-c-rc1")
	f.Add("**.*?", "")
	f.Add("qa-*", "qa-\n")
	f.Add("*x*", "axb")
	f.Add("*", "")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if !utf8.ValidString(pattern) || !utf8.ValidString(s) {
			t.Skip("regexp reads invalid UTF-8 as U+FFFD; tags are ASCII")
		}
		g := CompileGlob(pattern)
		got := g.Match(s)
		want := globRegexp(pattern).MatchString(s)
		if got != want {
			t.Fatalf("CompileGlob(%q).Match(%q) = %v, regexp says %v", pattern, s, got, want)
		}
		if l, ok := g.literal(); ok {
			if lit, judged := l.match(s); !judged || lit != want {
				t.Fatalf("glob %q as a literal test, %q: %v (judged %v), regexp says %v", pattern, s, lit, judged, want)
			}
		}
	})
}

// parseVersionSplit is parseVersion as it was first written (splitting and
// joining the core), the reference FuzzParseVersion holds it to.
func parseVersionSplit(s string) (*semver.Version, bool) {
	t := strings.TrimPrefix(s, "v")
	core, rest := t, ""
	if i := strings.IndexAny(t, "-+"); i >= 0 {
		core, rest = t[:i], t[i:]
	}
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return nil, false
	}
	for i, p := range parts {
		if p == "" || strings.IndexFunc(p, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
			return nil, false
		}
		if trimmed := strings.TrimLeft(p, "0"); trimmed != p {
			if trimmed == "" {
				trimmed = "0"
			}
			parts[i] = trimmed
		}
	}
	v, err := semver.StrictNewVersion(strings.Join(parts, ".") + rest)
	if err != nil {
		return nil, false
	}
	return v, true
}

// FuzzParseVersion: parseVersion (in place) and mastermindsVersion read
// what the split-and-join reading did.
func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"1.2.3", "v1.2.3", "01.02.003", "2025.07.03-rc.1+b", "1.2", "1.2.3.4", "1..3", "1.2.3-",
		"v", "", "00.0.0", "1.2.3+", "1.2.3-01", "1.2.3-rc.01", "9999999999999999999999.0.0", "1.2.3-a.b+c.d", "latest"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, wantOK := parseVersionSplit(s)
		got, gotOK := mastermindsVersion(s)
		switch {
		case gotOK != wantOK:
			t.Fatalf("mastermindsVersion(%q) ok = %v, the split reading says %v", s, gotOK, wantOK)
		case gotOK && (got.Compare(want) != 0 || got.String() != want.String() || got.Original() != want.Original()):
			t.Fatalf("mastermindsVersion(%q) = %s (%q), the split reading %s (%q)", s, got, got.Original(), want, want.Original())
		}
		v, ok := parseVersion(s)
		switch {
		case ok != wantOK:
			t.Fatalf("parseVersion(%q) ok = %v, the split reading says %v", s, ok, wantOK)
		case ok && (v.major != want.Major() || v.minor != want.Minor() || v.patch != want.Patch() || v.pre != want.Prerelease()):
			t.Fatalf("parseVersion(%q) = %+v, the split reading %s", s, v, want)
		}
	})
}

// FuzzCompareVersions: two versions read in place order as Masterminds
// orders them.
func FuzzCompareVersions(f *testing.F) {
	for _, p := range [][2]string{{"1.2.3", "1.2.3-rc.1"}, {"1.2.3-rc.1", "1.2.3-rc.1.1"}, {"1.2.3-rc.10", "1.2.3-rc.9"},
		{"1.2.3-alpha", "1.2.3-1"}, {"1.2.3-99999999999999999999", "1.2.3-1"}, {"01.2.3", "1.2.3+b"}, {"1.2.3-a-b", "1.2.3-a"},
		{"1.2.3-A", "1.2.3-a"}, {"18446744073709551615.0.0", "1.0.0"}, {"1.2.3-0", "1.2.3-00a"}} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		va, okA := parseVersion(a)
		vb, okB := parseVersion(b)
		if !okA || !okB {
			return
		}
		ma, _ := mastermindsVersion(a)
		mb, _ := mastermindsVersion(b)
		if got, want := va.compare(vb), ma.Compare(mb); got != want {
			t.Fatalf("compare(%q, %q) = %d, Masterminds says %d", a, b, got, want)
		}
	})
}
