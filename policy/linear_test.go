package policy

import (
	"regexp"
	"slices"
	"testing"
)

// FuzzLinearRE: a pattern with a linear form matches every tag as the
// regexp does, groups included.
func FuzzLinearRE(f *testing.F) {
	for _, s := range [][2]string{
		{`^dev-(?P<ts>[0-9]+)$`, "dev-20240101"}, {`^dev-(?P<ts>[0-9]+)$`, "dev-2024x"}, {`^main-[a-f0-9]+-(?P<ts>[0-9]+)`, "main-abc123-42-x"},
		{`^v(.*)$`, "v1.2.3"}, {`^v(.*)$`, "v1\n2"}, {`^(?s)v(.*)$`, "v1\n2"}, {`^([^-]+)-([0-9]*)$`, "héllo-12"}, {`^([^-]+)-(\d+)`, "a\xffb-1"},
		{`^x*y`, "xxy"}, {`^(a+)(b+)$`, "aabb"}, {`^[a-z]+-[0-9]+`, "abc-"}, {`^`, "anything"}, {`^$`, ""}, {`^(?i)dev-(\d+)`, "DEV-1"},
		{`^(.*)-(\d+)$`, "a-b-1"}, {`^([a-z]*)([0-9]*)$`, "ab12"}, {`^\w+\.(\d+)$`, "a_b.12"}, {`^[^\x{100}]+$`, "ā"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, tag string) {
		re, err := regexp.Compile(pattern)
		if err != nil {
			return
		}
		l, ok := linearOf(pattern)
		if !ok {
			return
		}
		got, want := l.match(tag, nil), re.FindStringSubmatchIndex(tag)
		if !slices.Equal(got, want) {
			t.Fatalf("pattern %q, tag %q: linear match %v, the regexp's %v", pattern, tag, got, want)
		}
	})
}

// TestLinearOf: which patterns have a linear form.
func TestLinearOf(t *testing.T) {
	for pattern, want := range map[string]bool{
		`^dev-(?P<ts>[0-9]+)$`:           true,
		`^main-[a-f0-9]+-(?P<ts>[0-9]+)`: true,
		`^v(.*)$`:                        true,
		`^([^-]+)-([0-9]+)$`:             true,
		`dev-(\d+)`:                      false, // not anchored: the regexp searches
		`^(.*)-(\d+)$`:                   false, // ".*" takes the "-" that follows it
		`^([a-z]*)([0-9]*)$`:             false, // an empty run beside another
		`^(?i)dev-(\d+)`:                 false,
		`^dev-(\d+?)`:                    false, // not greedy
		`^(dev|qa)-(\d+)`:                false,
		`^[^\x{100}]+$`:                  false, // takes some runes from 0x80, not all
		`^(?m)dev-(\d+)$`:                false,
		`^dev-([0-9]{8})$`:               false,
	} {
		if _, got := linearOf(pattern); got != want {
			t.Errorf("linearOf(%q) ok = %v, want %v", pattern, got, want)
		}
	}
}
