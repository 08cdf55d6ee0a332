package scanner

import (
	"strings"
	"testing"
)

func TestClip(t *testing.T) {
	words := strings.Repeat("credential provider failed; ", 60) // 1,680 bytes of words
	hint := " (hint: no AWS credentials found: on EKS annotate the ServiceAccount with eks.amazonaws.com/role-arn (IRSA))"
	for _, tc := range []struct {
		name, in       string
		prefix, suffix string // what the clipped text starts and ends with
	}{
		{"short", "short message", "short message", "short message"},
		{"words, a hint", "get credentials: " + words + hint, "get credentials: credential provider", "more bytes)" + hint},
		{"words", words, "credential provider", "failed; credential... (662 more bytes)"},
		{"no space", strings.Repeat("é", 700), "éé", "é... (376 more bytes)"},
	} {
		got := Clip(tc.in)
		if !strings.HasPrefix(got, tc.prefix) || !strings.HasSuffix(got, tc.suffix) {
			t.Errorf("%s: Clip = %q\nwant it to start with %q and end with %q", tc.name, got, tc.prefix, tc.suffix)
		}
		if len(got) > MaxMessage+len("... (99999 more bytes)") {
			t.Errorf("%s: %d bytes", tc.name, len(got))
		}
		if body, _, ok := strings.Cut(got, "... ("); ok && strings.HasSuffix(body, "provid") {
			t.Errorf("%s: cut inside a word: %q", tc.name, body[len(body)-20:])
		}
	}
}
