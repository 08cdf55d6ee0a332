package gitwriter

import (
	"testing"

	"go.yaml.in/yaml/v3"
	k8syaml "sigs.k8s.io/yaml"
)

// Every value a YAML 1.1 or 1.2 reader would take for something other than
// the string is double-quoted when it goes into a plain scalar.
func TestEncodePlainScalar(t *testing.T) {
	quoted := []string{
		// YAML 1.1 booleans, every case variant
		"y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE",
		"on", "On", "ON", "off", "Off", "OFF",
		// null and the empty value
		"~", "null", "Null", "NULL", "",
		// numbers in every 1.1 and 1.2 form
		"0", "1234", "-1", "+1", "0o17", "017", "0x1F", "0b101", "1_000", "1:20", "190:20:30", ".inf", "-.Inf", "+.INF", ".NaN", ".nan",
		"1e3", "1E3", "1e+3", "1.5", ".5", "1.", "6.8523015e+5", "685.230_15e+03", "190:20:30.15",
		// dates and timestamps
		"2024-01-02", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5", "2001-12-15T02:59:43.1Z",
		// YAML indicators and other non-strings
		"<<", "=", "- x", "[a]", "{a}", "*ref", "&a", "!tag", "|", ">", "'", "\"", "%x", "@x", "`x",
		"a #b", "a: b", "a:", " lead", "trail ", "tab\tx",
	}
	for _, v := range quoted {
		got, err := encodeScalar(v, plain)
		if err != nil {
			t.Errorf("encodeScalar(%q): %v", v, err)
			continue
		}
		if got[0] != '"' {
			t.Errorf("encodeScalar(%q) = %s, want it double-quoted", v, got)
		}
		checkDecodes(t, got, v)
	}
	plainOK := []string{"qa-sha-06c5953", "v1.2.3", "1.2.3", "sha-1a2b", "latest", "2024.02.01", "20240101-abc", "yes-please", "nope", "0x1G", "1_2_a",
		"283234040926.dkr.ecr.us-east-2.amazonaws.com/lrl_falcon_bartender:qa-sha-1a2b3c4", "repo:on", "repo:1", "sha256:0000"}
	for _, v := range plainOK {
		got, err := encodeScalar(v, plain)
		if err != nil || string(got) != v {
			t.Errorf("encodeScalar(%q) = %s, %v; want it plain", v, got, err)
		}
		checkDecodes(t, got, v)
	}
}

func TestEncodeScalarStyles(t *testing.T) {
	tests := []struct {
		value string
		st    style
		want  string // "" = an error
	}{
		{"it's", singleQuoted, "'it''s'"},
		{"on", singleQuoted, "'on'"},
		{"a\nb", singleQuoted, ""},
		{"a\x00b", singleQuoted, ""},
		{"a\nb", doubleQuoted, `"a\nb"`},
		{"a\nb", plain, `"a\nb"`},
		{"\xff", plain, ""},
		{"\xff", doubleQuoted, ""},
		{"é\u2028", doubleQuoted, `"é\u2028"`},
	}
	for _, tt := range tests {
		got, err := encodeScalar(tt.value, tt.st)
		if tt.want == "" {
			if err == nil {
				t.Errorf("encodeScalar(%q, %d) = %s, want an error", tt.value, tt.st, got)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("encodeScalar(%q, %d) = %s, %v; want %s", tt.value, tt.st, got, err, tt.want)
		}
		checkDecodes(t, got, tt.value)
	}
}

// checkDecodes asserts that "v: <written>" reads back as exactly want with
// yaml.v3 and with sigs.k8s.io/yaml (kubectl's and Helm's reader).
func checkDecodes(t *testing.T, written []byte, want string) {
	t.Helper()
	doc := append([]byte("v: "), written...)
	var v3 map[string]any
	if err := yaml.Unmarshal(doc, &v3); err != nil {
		t.Errorf("yaml.v3 cannot read %s: %v", doc, err)
	} else if got, ok := v3["v"].(string); !ok || got != want {
		t.Errorf("yaml.v3 reads %s as %#v, want %q", doc, v3["v"], want)
	}
	var k8s map[string]any
	if err := k8syaml.Unmarshal(doc, &k8s); err != nil {
		t.Errorf("sigs.k8s.io/yaml cannot read %s: %v", doc, err)
	} else if got, ok := k8s["v"].(string); !ok || got != want {
		t.Errorf("sigs.k8s.io/yaml reads %s as %#v, want %q", doc, k8s["v"], want)
	}
}

// FuzzEncodeScalar: for any tag and style, what is written reads back as
// exactly that tag with yaml.v3 and sigs.k8s.io/yaml, or is refused.
func FuzzEncodeScalar(f *testing.F) {
	for _, s := range []string{"on", "1e3", "qa-sha-1", "2024-01-02", "a: b", "it's", "a\nb", "~", ".inf", "0o17", "1:20"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tag string) {
		for _, st := range []style{plain, singleQuoted, doubleQuoted} {
			written, err := encodeScalar(tag, st)
			if err != nil {
				continue
			}
			checkDecodes(t, written, tag)
		}
	})
}
