package cluster

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/imagebutler/imagebutler/policy"
	"github.com/imagebutler/imagebutler/scanner"
)

// Where a replica takes what other replicas send it: a pass over a
// repository it holds (a git push event or a due alarm that reached
// another replica), and an ECR push, whose passes it runs over the
// repositories it holds that use the pushed image.
const (
	PassPath = "/cluster/pass"
	PushPath = "/cluster/push"
)

// signatureHeader carries the HMAC-SHA256 of a request's body.
const signatureHeader = "X-Imagebutler-Signature"

// maxForwardAge is how old a request may be when it arrives: an older one
// (replayed) is refused.
const maxForwardAge = 5 * time.Minute

// forwarded is a pass one replica asks another for.
type forwarded struct {
	Repo   string         `json:"repo"`
	Pushes []scanner.Push `json:"pushes,omitempty"`
	Sent   time.Time      `json:"sent"`
}

// relayed is an ECR push one replica hands the others.
type relayed struct {
	Push  scanner.Push `json:"push"`
	Since time.Time    `json:"since"`
	Sent  time.Time    `json:"sent"`
}

// outcome is what the replica that ran them says of the passes.
type outcome struct {
	Commit string `json:"commit,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Passer runs targeted passes; *scanner.Scanner is the real one.
type Passer interface {
	Users(ref policy.ImageRef) []string
	Pass(ctx context.Context, repo string, pushes []scanner.Push) (scanner.RepoResult, error)
}

// Forwarder runs a push event's passes where the repositories' shards are
// held: here, or (signed with the cluster's key) on the replicas that hold
// them. It is the events.Target of a replica in a cluster.
type Forwarder struct {
	local   Passer
	member  *Member
	keyFile string
	client  *http.Client
}

// NewForwarder returns the Forwarder of local's passes among member's
// replicas, signing with the key in keyFile (read at each request, so that
// a rotated Secret is taken up).
func NewForwarder(local Passer, member *Member, keyFile string) *Forwarder {
	return &Forwarder{local: local, member: member, keyFile: keyFile, client: &http.Client{}}
}

// Users names the repositories this replica holds whose policies use ref.
func (f *Forwarder) Users(ref policy.ImageRef) []string {
	var mine []string
	for _, repo := range f.local.Users(ref) {
		if f.member.Holds(repo) {
			mine = append(mine, repo)
		}
	}
	return mine
}

// Pass runs the pass over repo here when this replica holds its shard,
// else on the replica that does, and waits for its outcome. An error (no
// holder, the holder unreachable) leaves the event unhandled: an SQS
// message stays in the queue and comes back.
func (f *Forwarder) Pass(ctx context.Context, repo string, pushes []scanner.Push) (scanner.RepoResult, error) {
	r, err := f.local.Pass(ctx, repo, pushes)
	if !errors.Is(err, scanner.ErrNotHeld) {
		return r, err
	}
	id, addr, ok := f.member.Holder(repo)
	if !ok {
		return r, fmt.Errorf("%w, and no live replica holds its shard %d now; the event waits", err, f.member.ShardOf(repo))
	}
	var out outcome
	if err := f.post(ctx, id, addr+PassPath, forwarded{Repo: repo, Pushes: pushes, Sent: time.Now()}, &out); err != nil {
		return r, err
	}
	r = scanner.RepoResult{Repository: repo, Commit: out.Commit}
	if out.Error != "" {
		r.Err = fmt.Errorf("on replica %s: %s", id, out.Error)
	}
	return r, nil
}

// Relay hands an ECR push to every other live replica and waits until
// each has run the passes of the repositories it holds that use the pushed
// image (its own Users). The error names the replicas that failed.
func (f *Forwarder) Relay(ctx context.Context, push scanner.Push, since time.Time) error {
	peers := f.member.Peers()
	errs := make([]error, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out outcome
			if err := f.post(ctx, p.Identity, p.Address+PushPath, relayed{Push: push, Since: since, Sent: time.Now()}, &out); err != nil {
				errs[i] = err
			} else if out.Error != "" {
				errs[i] = fmt.Errorf("on replica %s: %s", p.Identity, out.Error)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// post sends v, signed, to the replica id at url and decodes its answer.
func (f *Forwarder) post(ctx context.Context, id, url string, v, answer any) error {
	key, err := readKey(f.keyFile)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(v)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("replica %s: %w", id, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(signatureHeader, "sha256="+sign(key, body))
	resp, err := f.client.Do(req)
	if err != nil {
		return fmt.Errorf("replica %s: %w", id, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("replica %s: POST %s: HTTP %d: %s", id, url, resp.StatusCode, strings.TrimSpace(string(data)))
	}
	if err := json.Unmarshal(data, answer); err != nil {
		return fmt.Errorf("replica %s: POST %s: %w", id, url, err)
	}
	return nil
}

// PassHandler serves PassPath: a forwarded pass runs here and its outcome
// is the answer (409 when this replica does not hold the shard either).
func PassHandler(local Passer, keyFile string, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p forwarded
		if !verified(w, r, keyFile, &p, func() time.Time { return p.Sent }) || p.Repo == "" {
			return
		}
		log.Info("forwarded pass", "repo", p.Repo, "pushes", len(p.Pushes))
		res, err := local.Pass(r.Context(), p.Repo, p.Pushes)
		switch {
		case errors.Is(err, scanner.ErrNotHeld):
			http.Error(w, err.Error(), http.StatusConflict)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		out := outcome{Commit: res.Commit}
		if res.Err != nil {
			out.Error = res.Err.Error()
		}
		answer(w, out)
	})
}

// PushHandler serves PushPath: run(push, since) runs the passes of the
// repositories this replica holds that use the pushed image, and its
// error is the answer.
func PushHandler(run func(ctx context.Context, push scanner.Push, since time.Time) error, keyFile string, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p relayed
		if !verified(w, r, keyFile, &p, func() time.Time { return p.Sent }) {
			return
		}
		log.Info("relayed push", "image", p.Push.Ref.String()+":"+p.Push.Tag)
		var out outcome
		if err := run(r.Context(), p.Push, p.Since); err != nil {
			out.Error = err.Error()
		}
		answer(w, out)
	})
}

// verified reads r's body into v when its signature is the cluster key's
// and it was sent (sent(), once decoded) within maxForwardAge; otherwise it
// answers the refusal and returns false.
func verified(w http.ResponseWriter, r *http.Request, keyFile string, v any, sent func() time.Time) bool {
	key, err := readKey(keyFile)
	if err != nil {
		http.Error(w, "the cluster key is not available", http.StatusInternalServerError)
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, "reading the body failed", http.StatusBadRequest)
		return false
	}
	got, _ := strings.CutPrefix(r.Header.Get(signatureHeader), "sha256=")
	sig, err := hex.DecodeString(got)
	want, _ := hex.DecodeString(sign(key, body))
	if err != nil || !hmac.Equal(sig, want) {
		http.Error(w, "signature does not match", http.StatusUnauthorized)
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		http.Error(w, "not a request of the cluster", http.StatusBadRequest)
		return false
	}
	if age := time.Since(sent()); age > maxForwardAge || age < -maxForwardAge {
		http.Error(w, fmt.Sprintf("sent %s ago: too old", age.Round(time.Second)), http.StatusUnauthorized)
		return false
	}
	return true
}

func answer(w http.ResponseWriter, out outcome) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// sign is the hex HMAC-SHA256 of body under key.
func sign(key, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// readKey reads the cluster's key from path.
func readKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cluster.secretFile: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < 16 {
		return nil, fmt.Errorf("cluster.secretFile %s: the key must be at least 16 bytes", path)
	}
	return b, nil
}
