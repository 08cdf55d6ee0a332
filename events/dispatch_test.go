package events

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/imagebutler/imagebutler/policy"
	"github.com/imagebutler/imagebutler/scanner"
)

// fakeTarget records passes; fail makes them fail, hold keeps each pass
// running until it is closed.
type fakeTarget struct {
	mu     sync.Mutex
	users  map[policy.ImageRef][]string
	passes []fakePass
	fail   error
	hold   chan struct{}
}

type fakePass struct {
	repo   string
	pushes []scanner.Push
}

func (f *fakeTarget) Users(ref policy.ImageRef) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.users[ref]
}

func (f *fakeTarget) Pass(ctx context.Context, repo string, pushes []scanner.Push) (scanner.RepoResult, error) {
	f.mu.Lock()
	f.passes = append(f.passes, fakePass{repo, pushes})
	hold, fail := f.hold, f.fail
	f.mu.Unlock()
	if hold != nil {
		<-hold
	}
	return scanner.RepoResult{Repository: repo, Commit: "abc", Err: fail}, nil
}

func (f *fakeTarget) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.passes)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// waitFor waits up to a minute for every channel's outcome.
func waitFor(t *testing.T, chans ...<-chan error) []error {
	t.Helper()
	var out []error
	for _, c := range chans {
		select {
		case err := <-c:
			out = append(out, err)
		case <-time.After(time.Minute):
			t.Fatal("no outcome within a minute")
		}
	}
	return out
}

var web = policy.ImageRef{Account: "283234040926", Region: "us-east-2", Repository: "shop_web"}

// A burst of 20 triggers for one repository within the window is one pass
// that sees every push; each trigger learns its outcome.
func TestDispatcherCoalescesBurst(t *testing.T) {
	f := &fakeTarget{}
	d := NewDispatcher(context.Background(), f, 200*time.Millisecond, 60, 4, nil, quiet)
	var chans []<-chan error
	for i := range 20 {
		chans = append(chans, d.Trigger("apps", []scanner.Push{{Ref: web, Tag: string(rune('a' + i))}}, time.Now()))
	}
	for _, err := range waitFor(t, chans...) {
		if err != nil {
			t.Errorf("outcome %v, want nil", err)
		}
	}
	if n := f.count(); n != 1 || len(f.passes[0].pushes) != 20 {
		t.Errorf("%d passes (pushes %v), want one with 20 pushes", n, f.passes)
	}
}

// Triggers that arrive while a pass runs make one more pass, after it.
func TestDispatcherRunsAgainAfterRunningPass(t *testing.T) {
	f := &fakeTarget{hold: make(chan struct{})}
	d := NewDispatcher(context.Background(), f, 10*time.Millisecond, 60, 4, nil, quiet)
	first := d.Trigger("apps", nil, time.Time{})
	for deadline := time.Now().Add(time.Minute); f.count() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first pass never started")
		}
	}
	var later []<-chan error
	for range 5 {
		later = append(later, d.Trigger("apps", nil, time.Time{}))
	}
	if n := f.count(); n != 1 {
		t.Errorf("%d passes while the first runs, want 1", n)
	}
	close(f.hold)
	waitFor(t, append(later, first)...)
	if n := f.count(); n != 2 {
		t.Errorf("%d passes, want 2 (the running one, then one for what came meanwhile)", n)
	}
}

// A failed pass is reported to every trigger it served.
func TestDispatcherReportsFailure(t *testing.T) {
	f := &fakeTarget{fail: errors.New("remote down")}
	d := NewDispatcher(context.Background(), f, time.Millisecond, 60, 4, nil, quiet)
	for _, err := range waitFor(t, d.Trigger("apps", nil, time.Time{}), d.Trigger("apps", nil, time.Time{})) {
		if !errors.Is(err, ErrPassFailed) {
			t.Errorf("outcome %v, want ErrPassFailed", err)
		}
	}
}

// Once stopped, the dispatcher runs no pass and says why.
func TestDispatcherStopped(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := &fakeTarget{}
	d := NewDispatcher(ctx, f, time.Millisecond, 60, 4, nil, quiet)
	if err := waitFor(t, d.Trigger("apps", nil, time.Time{}))[0]; !errors.Is(err, context.Canceled) {
		t.Errorf("outcome %v, want context.Canceled", err)
	}
	if f.count() != 0 {
		t.Error("a stopped dispatcher ran a pass")
	}
}

// At runs a pass at the moment asked for (the earliest of those asked for
// a repository), and not before.
func TestDispatcherAt(t *testing.T) {
	f := &fakeTarget{}
	d := NewDispatcher(context.Background(), f, time.Millisecond, 60, 1, nil, quiet)
	start := time.Now()
	d.At("apps", start.Add(time.Hour))
	d.At("apps", start.Add(200*time.Millisecond)) // earlier: replaces the hour
	d.At("apps", start.Add(time.Hour))            // later: ignored
	for deadline := time.Now().Add(time.Minute); f.count() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no pass within a minute")
		}
	}
	if waited := time.Since(start); waited < 200*time.Millisecond {
		t.Errorf("the pass ran %s after, before the moment asked for", waited)
	}
	time.Sleep(100 * time.Millisecond)
	if n := f.count(); n != 1 {
		t.Errorf("%d passes, want 1", n)
	}
	d.mu.Lock()
	left := len(d.alarms)
	d.mu.Unlock()
	if left != 0 {
		t.Errorf("%d alarms left after the one rang", left)
	}
}
