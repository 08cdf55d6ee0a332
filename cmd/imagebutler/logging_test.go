package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// JSON logs write durations as the text logs do, not as nanoseconds.
func TestLogDurations(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		var b bytes.Buffer
		log, err := newLogger(&b, format, "info")
		if err != nil {
			t.Fatal(err)
		}
		log.Info("cycle", "took", 1500*time.Millisecond, slog.Group("pass", "wait", 2*time.Minute), "n", 3)
		want := map[string][]string{
			"json": {`"took":"1.5s"`, `"pass":{"wait":"2m0s"}`, `"n":3`},
			"text": {"took=1.5s", "pass.wait=2m0s", "n=3"},
		}[format]
		for _, w := range want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%s log %q lacks %s", format, b.String(), w)
			}
		}
	}
}
