package integration

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
	"github.com/imagebutler/imagebutler/policy"
	"github.com/imagebutler/imagebutler/scanner"
)

// gitIn runs git in the bare repository with input on stdin and returns
// its trimmed output.
func gitIn(t *testing.T, bare, input string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"--git-dir", bare}, args...)...)
	cmd.Stdin = strings.NewReader(input)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=Mallory", "GIT_AUTHOR_EMAIL=mallory@example.com",
		"GIT_COMMITTER_NAME=Mallory", "GIT_COMMITTER_EMAIL=mallory@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// rawTree writes a tree object of exactly the entries given ("mode name
// hash", in this order, duplicates kept), as git's own tools would refuse
// to, and returns its hash.
func rawTree(t *testing.T, bare string, entries ...string) string {
	t.Helper()
	var b bytes.Buffer
	for _, e := range entries {
		f := strings.Fields(e)
		h, err := hex.DecodeString(f[2])
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %s\x00", f[0], f[1])
		b.Write(h)
	}
	return gitIn(t, bare, b.String(), "hash-object", "-t", "tree", "--literally", "-w", "--stdin")
}

// TestCraftedTreeIsRefused: a collaborator pushes a tree holding a link x
// to .git and a folder x (a duplicate name git's tools refuse and servers
// accept by default), hoping the checkout writes the folder's hook and pack
// through the link into .git. The butler refuses the tree, says why, writes
// nothing into .git and pushes nothing; once a clean tree is pushed, the
// butler's commit is that tree plus the value change, nothing else.
func TestCraftedTreeIsRefused(t *testing.T) {
	e := setupRepo(t, "crafted", testpeers.SeedDeployment)
	bare := filepath.Join(e.git.Root, "crafted.git")
	head := gitIn(t, bare, "", "rev-parse", "main")
	apps := gitIn(t, bare, "", "rev-parse", "main:apps")
	blob := func(content string) string { return gitIn(t, bare, content, "hash-object", "-w", "--stdin") }
	hook := rawTree(t, bare, "100755 post-checkout "+blob("#!/bin/sh\ntouch /tmp/pwned\n"))
	pack := rawTree(t, bare, "100644 pack-planted.pack "+blob("PACK planted"))
	objects := rawTree(t, bare, "40000 pack "+pack)
	evil := rawTree(t, bare, "40000 hooks "+hook, "40000 objects "+objects)
	crafted := rawTree(t, bare, "40000 apps "+apps, "120000 x "+blob(".git"), "40000 x "+evil)
	commit := gitIn(t, bare, "", "commit-tree", crafted, "-p", head, "-m", "innocent change")
	gitIn(t, bare, "", "update-ref", "refs/heads/main", commit)

	stdout, stderr, code := e.once(t)
	if code != 1 || !strings.Contains(stdout+stderr, "x: the tree names an entry twice") {
		t.Errorf("once over the crafted tree: exit %d, want 1 naming the duplicate\n%s\n%s", code, stdout, stderr)
	}
	if got := gitIn(t, bare, "", "rev-parse", "main"); got != commit {
		t.Errorf("main moved to %s; the butler must push nothing over a refused tree", got)
	}
	copies, _ := filepath.Glob(filepath.Join(e.dir, "state", "*"))
	for _, c := range copies {
		for _, p := range []string{".git/hooks/post-checkout", ".git/objects/pack/pack-planted.pack"} {
			if _, err := os.Lstat(filepath.Join(c, p)); err == nil {
				t.Errorf("%s was written through the link", filepath.Join(c, p))
			}
		}
	}

	// A clean tree: the folder x alone.
	clean := rawTree(t, bare, "40000 apps "+apps, "40000 x "+evil)
	fixed := gitIn(t, bare, "", "commit-tree", clean, "-p", commit, "-m", "fix")
	gitIn(t, bare, "", "update-ref", "refs/heads/main", fixed)
	if stdout, stderr, code := e.once(t); code != 0 || !strings.Contains(stdout, "1 change(s), pushed") {
		t.Fatalf("once over the clean tree: exit %d\n%s\n%s", code, stdout, stderr)
	}
	butlers := gitIn(t, bare, "", "rev-parse", "main")
	if parent := gitIn(t, bare, "", "rev-parse", butlers+"^"); parent != fixed {
		t.Errorf("the butler's commit has parent %s, want %s", parent, fixed)
	}
	// What a clean git checkout of fixed plus the value change gives.
	work := filepath.Join(t.TempDir(), "person")
	gitOut(t, "", "clone", "--quiet", bare, work)
	gitOut(t, work, "checkout", "--quiet", fixed)
	file := filepath.Join(work, "apps", "bartender", "deployment.yaml")
	b, _ := os.ReadFile(file)
	os.WriteFile(file, []byte(strings.Replace(string(b), testpeers.SeedOldTag, testpeers.SeedNewestTag, 1)), 0o644)
	gitOut(t, work, "add", "--all")
	want := gitOut(t, work, "write-tree")
	if got := gitIn(t, bare, "", "rev-parse", butlers+"^{tree}"); got != want {
		t.Errorf("the butler's tree %s differs from a clean checkout plus the value change (%s):\n%s", got, want,
			gitIn(t, bare, "", "diff-tree", "-r", want, got))
	}
}

// procKiB reads a /proc/<pid>/status field (VmRSS, VmHWM) in KiB.
func procKiB(t *testing.T, pid int, field string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			var kib int
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), &kib)
			return kib
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// pacedBody sends left chunks, a tenth of a second apart.
type pacedBody struct {
	chunk []byte
	left  int
}

func (b *pacedBody) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, io.EOF
	}
	time.Sleep(100 * time.Millisecond)
	b.left--
	return copy(p, b.chunk), nil
}

// TestWebhookFlood runs `imagebutler run` with the webhook and sends it 450
// deliveries at once from senders without the secret (no credentials, a
// forged signature, huge headers), each with a 1 MiB body: the process's
// peak RSS stays under 128 MiB above idle, none of them reaches /status,
// and a real delivery is still taken afterwards.
func TestWebhookFlood(t *testing.T) {
	ev := &eventsEnv{env: setupRepo(t, "flooded", testpeers.SeedDeployment)}
	secretFile := filepath.Join(ev.dir, "webhook-secret")
	os.WriteFile(secretFile, []byte("hook-secret\n"), 0o600)
	ev.start(t, fmt.Sprintf("events:\n  webhook: {secretFile: %s}\n  coalesce: 100ms\n", secretFile))
	pid := ev.cmd.Process.Pid
	idle := procKiB(t, pid, "VmRSS")

	// Each body goes at a slow pace (64 KiB a tenth of a second), so that
	// all 450 are in flight at once.
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	forged := "sha256=" + strings.Repeat("ab", 32)
	codes := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 450 {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, ev.base+"/hooks/git", &pacedBody{chunk: chunk, left: 16})
			req.ContentLength = 16 * int64(len(chunk))
			switch i % 3 {
			case 1:
				req.Header.Set("X-Hub-Signature-256", forged)
			case 2:
				req.Header.Set("X-Junk", strings.Repeat("j", 60<<10))
			}
			resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
			code := -1 // the server closed the connection while the body was sent
			if err == nil {
				code = resp.StatusCode
				resp.Body.Close()
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	peak := procKiB(t, pid, "VmHWM")
	t.Logf("RSS idle %d KiB, peak %d KiB (+%d KiB); answers %v", idle, peak, peak-idle, codes)
	if peak-idle > 128<<10 {
		t.Errorf("peak RSS %d KiB is %d KiB above idle (%d KiB); at most 128 MiB", peak, peak-idle, idle)
	}
	if codes[http.StatusAccepted] != 0 {
		t.Errorf("%d deliveries without the secret were accepted", codes[http.StatusAccepted])
	}
	var status struct {
		Events []struct{ Outcome string } `json:"events"`
	}
	resp, err := http.Get(ev.base + "/status")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&status)
	resp.Body.Close()
	if len(status.Events) != 0 {
		t.Errorf("/status keeps %d events from senders without the secret: %+v", len(status.Events), status.Events)
	}

	payload := fmt.Sprintf(`{"ref": "refs/heads/main", "repository": {"clone_url": %q}}`, ev.remote)
	mac := hmac.New(sha256.New, []byte("hook-secret"))
	mac.Write([]byte(payload))
	req, _ := http.NewRequest(http.MethodPost, ev.base+"/hooks/git", strings.NewReader(payload))
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	waitFor(t, "a real delivery taken after the flood", func() bool {
		resp, err := http.DefaultClient.Do(req.Clone(context.Background()))
		if err != nil {
			return false
		}
		resp.Body.Close()
		req.Body = io.NopCloser(strings.NewReader(payload))
		return resp.StatusCode == http.StatusAccepted
	})
}

// TestKeptCopiesMemory runs `imagebutler run` over five repositories of
// 80 MB each (forty 2 MiB files beside the seed Deployment): the kept
// working copies' object caches are small, so the process's RSS after the
// first cycle stays far below the repositories' size (with go-git's 96 MiB
// default cache per copy it was 666 MiB for five 83 MB copies, 1.44-1.53
// GiB for ten).
func TestKeptCopiesMemory(t *testing.T) {
	t.Parallel() // disk-bound: with the other slow tests, after the rest
	needPeers(t)
	seedOnce(t, t.Context())
	dir := t.TempDir()
	work := filepath.Join(dir, "work")
	os.MkdirAll(filepath.Join(work, "apps", "bartender"), 0o755)
	os.MkdirAll(filepath.Join(work, "blobs"), 0o755)
	os.WriteFile(filepath.Join(work, "apps", "bartender", "deployment.yaml"), []byte(testpeers.SeedDeployment), 0o644)
	// 40 files of 2 MiB, each its own text: small in the pack (zlib), 80 MB
	// as the objects go-git reads and caches.
	for i := range 40 {
		var b bytes.Buffer
		for j := 0; b.Len() < 2<<20; j++ {
			fmt.Fprintf(&b, "file %d line %d\n", i, j)
		}
		os.WriteFile(filepath.Join(work, "blobs", fmt.Sprintf("%02d.txt", i)), b.Bytes(), 0o644)
	}
	gitOut(t, "", "init", "--quiet", "--initial-branch=main", work)
	gitOut(t, work, "add", "--all")
	gitOut(t, work, "commit", "--quiet", "-m", "80 MB")
	var repos strings.Builder
	const copies = 5
	for i := range copies {
		bare := filepath.Join(dir, fmt.Sprintf("r%d.git", i))
		if i == 0 {
			gitOut(t, "", "clone", "--quiet", "--bare", work, bare)
		} else if out, err := exec.Command("cp", "-al", filepath.Join(dir, "r0.git"), bare).CombinedOutput(); err != nil {
			t.Fatalf("cp -al: %v\n%s", err, out)
		}
		fmt.Fprintf(&repos, "  - {url: %q, branch: main}\n", bare)
	}
	port := freePort(t)
	cfg := filepath.Join(dir, "imagebutler.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("stateDir: %q\nlisten: \"127.0.0.1:%d\"\nschedule: \"@every 1h\"\naws: {region: %s, endpoint: %s}\ngit:\n  author: {name: %q, email: %q}\nrepositories:\n%s",
		filepath.Join(dir, "state"), port, testpeers.SeedRegion, moto.Endpoint, butlerName, butlerEmail, repos.String())), 0o644)
	butler := startRun(t, cfg)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	// Five clones of 80 MB: minutes on a loaded machine.
	for deadline := time.Now().Add(20 * time.Minute); get(base+"/readyz") != 200; time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			t.Fatal("the first cycle over five 80 MB repositories did not finish in 20 minutes")
		}
	}
	rss, peak := procKiB(t, butler.cmd.Process.Pid, "VmRSS"), procKiB(t, butler.cmd.Process.Pid, "VmHWM")
	t.Logf("%d kept copies of 80 MB: RSS %d KiB after the first cycle, peak %d KiB", copies, rss, peak)
	if rss > 256<<10 {
		t.Errorf("RSS %d KiB after the first cycle over %d kept copies; want under 256 MiB", rss, copies)
	}
	for i := range copies {
		if got := gitOut(t, filepath.Join(dir, fmt.Sprintf("r%d.git", i)), "log", "-1", "--format=%an", "main"); got != butlerName {
			t.Errorf("repository %d: last commit by %q, want the butler's", i, got)
		}
	}
}

// TestDescribeBatchWithAGoneImage: pushes coalesced into one DescribeImages
// call, one of them deleted since (ECR, and moto, fail the whole call with
// ImageNotFoundException): the others are still described.
func TestDescribeBatchWithAGoneImage(t *testing.T) {
	needPeers(t)
	ctx := t.Context()
	c := moto.ECR(testpeers.SeedRegion)
	const repo = "lrl_falcon_batch"
	if err := testpeers.CreateRepository(ctx, c, testpeers.SeedAccount, repo); err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"qa-sha-0000001", "qa-sha-0000002", "qa-sha-0000003", "qa-sha-gone"} {
		if _, err := testpeers.PushImage(ctx, c, testpeers.SeedAccount, repo, tag); err != nil {
			t.Fatal(err)
		}
	}
	if err := testpeers.DeleteImage(ctx, c, testpeers.SeedAccount, repo, "qa-sha-gone"); err != nil {
		t.Fatal(err)
	}
	lister, err := scanner.NewECR(ctx, config.AWS{Region: testpeers.SeedRegion, Endpoint: moto.Endpoint}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ref := policy.ImageRef{Account: testpeers.SeedAccount, Region: testpeers.SeedRegion, Repository: repo}
	images, err := lister.Describe(ctx, ref, []scanner.ImageID{{Tag: "qa-sha-0000001"}, {Tag: "qa-sha-gone"}, {Tag: "qa-sha-0000002"}, {Tag: "qa-sha-0000003"}})
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, img := range images {
		tags = append(tags, img.Tags...)
	}
	slices.Sort(tags)
	if want := []string{"qa-sha-0000001", "qa-sha-0000002", "qa-sha-0000003"}; !slices.Equal(tags, want) {
		t.Errorf("described %v, want %v", tags, want)
	}
}
