package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagebutler/imagebutler/policy"
	"github.com/imagebutler/imagebutler/scanner"
)

// passer holds repositories "held/…": a pass over one pushes commit c0ffee.
type passer struct{ passes []string }

func (p *passer) Users(policy.ImageRef) []string { return nil }

func (p *passer) Pass(_ context.Context, repo string, _ []scanner.Push) (scanner.RepoResult, error) {
	if !strings.HasPrefix(repo, "held/") {
		return scanner.RepoResult{}, fmt.Errorf("%s: %w", repo, scanner.ErrNotHeld)
	}
	p.passes = append(p.passes, repo)
	return scanner.RepoResult{Repository: repo, Commit: "c0ffee"}, nil
}

// TestPassHandler: only a request signed with the cluster's key and sent
// in the last five minutes runs a pass; a repository this replica does not
// hold is 409, so the sender keeps its event.
func TestPassHandler(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	os.WriteFile(keyFile, []byte("0123456789abcdef0123456789abcdef\n"), 0o600)
	p := &passer{}
	srv := httptest.NewServer(PassHandler(p, keyFile, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	send := func(key string, body any) (int, string) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", srv.URL, bytes.NewReader(b))
		req.Header.Set(signatureHeader, "sha256="+sign([]byte(key), b))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(out))
	}
	const key = "0123456789abcdef0123456789abcdef"
	for _, c := range []struct {
		name string
		key  string
		body forwarded
		code int
		want string
	}{
		{"signed", key, forwarded{Repo: "held/apps", Sent: time.Now()}, 200, `{"commit":"c0ffee"}`},
		{"another key", "fedcba9876543210fedcba9876543210", forwarded{Repo: "held/apps", Sent: time.Now()}, 401, "signature does not match"},
		{"replayed", key, forwarded{Repo: "held/apps", Sent: time.Now().Add(-6 * time.Minute)}, 401, "sent 6m0s ago: too old"},
		{"not held", key, forwarded{Repo: "other/apps", Sent: time.Now()}, 409, "other/apps: " + scanner.ErrNotHeld.Error()},
	} {
		code, got := send(c.key, c.body)
		if code != c.code || got != c.want {
			t.Errorf("%s: %d %q, want %d %q", c.name, code, got, c.code, c.want)
		}
	}
	if len(p.passes) != 1 {
		t.Errorf("passes run: %v, want the signed one only", p.passes)
	}
	// A key file too short to be a key refuses everything.
	os.WriteFile(keyFile, []byte("short"), 0o600)
	if code, _ := send("short", forwarded{Repo: "held/apps", Sent: time.Now()}); code != 500 {
		t.Errorf("with a short key: %d, want 500", code)
	}
	if _, err := readKey(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("readKey(missing) = %v", err)
	}
}
