package testpeers

import (
	"testing"
	"time"
)

// WaitFor polls cond every 200 ms until it holds, failing t after three
// minutes (generous: these machines are shared and often loaded).
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
