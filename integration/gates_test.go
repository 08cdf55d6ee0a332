package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
)

// gatesEnv is a git repository holding the seed Deployment over an ECR
// repository of its own in moto.
type gatesEnv struct {
	*env
	repo string
	ecr  *ecr.Client
}

var gatesRuns atomic.Int32

func newGatesEnv(t *testing.T, name string, pushes ...string) *gatesEnv {
	t.Helper()
	needPeers(t)
	g := &gatesEnv{repo: fmt.Sprintf("lrl_falcon_gates_%d", gatesRuns.Add(1)), ecr: moto.ECR(testpeers.SeedRegion)}
	if err := testpeers.CreateRepository(t.Context(), g.ecr, testpeers.SeedAccount, g.repo); err != nil {
		t.Fatal(err)
	}
	for _, tag := range pushes {
		g.push(t, tag)
	}
	g.env = setupRepo(t, name, strings.ReplaceAll(testpeers.SeedDeployment, testpeers.SeedRepository, g.repo))
	return g
}

// push pushes tag a second after whatever came before (moto keeps whole
// seconds).
func (g *gatesEnv) push(t *testing.T, tag string) {
	t.Helper()
	time.Sleep(1100 * time.Millisecond)
	if _, err := testpeers.PushImage(t.Context(), g.ecr, testpeers.SeedAccount, g.repo, tag); err != nil {
		t.Fatal(err)
	}
}

// config appends yaml to the config (gates, events, listen...).
func (g *gatesEnv) config(t *testing.T, replaceListen string, extra string) {
	t.Helper()
	cfg, _ := os.ReadFile(g.env.config)
	s := strings.Replace(string(cfg), `listen: ""`, replaceListen, 1) + extra
	os.WriteFile(g.env.config, []byte(s), 0o644)
}

// commits lists the tags the butler's commits set, oldest first.
func (g *gatesEnv) commits(t *testing.T) []string {
	t.Helper()
	out := gitOut(t, g.bareDir(), "log", "--reverse", "--author="+butlerEmail, "--format=%s", "main")
	var tags []string
	for line := range strings.SplitSeq(out, "\n") {
		if _, tag, ok := strings.Cut(line, " to "); ok {
			tags = append(tags, tag)
		}
	}
	return tags
}

// TestMinAgeGate: two images pushed seconds apart, minAge 3s, and push
// events (a webhook) with an hourly poll: the first cycle commits the
// older image, and the newer lands once it is three seconds old, by the
// pass the butler asks for at that moment, not by a poll.
func TestMinAgeGate(t *testing.T) {
	g := newGatesEnv(t, "min-age", "qa-sha-0000001")
	time.Sleep(3 * time.Second) // qa-sha-0000001 comes of age
	g.push(t, "qa-sha-0000002")
	secret := filepath.Join(g.dir, "webhook-secret")
	os.WriteFile(secret, []byte("hook-secret\n"), 0o600)
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	g.config(t, fmt.Sprintf("listen: \"127.0.0.1:%d\"\nschedule: \"@every 1h\"\nevents:\n  webhook: {secretFile: %q}\ngates:\n  minAge: 3s", port, secret), "")
	butler := startRun(t, g.env.config)
	waitFor(t, "the older image committed", func() bool { return len(g.commits(t)) >= 1 })
	if got := g.commits(t); got[0] != "qa-sha-0000001" {
		t.Fatalf("first commit set %s, want qa-sha-0000001 (qa-sha-0000002 is too young)", got[0])
	}
	if !strings.Contains(butler.logs.String(), `"msg":"candidate gated"`) || !strings.Contains(butler.logs.String(), `"tag":"qa-sha-0000002","gate":"minAge"`) {
		t.Errorf("the young image was not reported as gated:\n%s", butler.logs.String())
	}
	waitFor(t, "the newer image committed once of age", func() bool { return len(g.commits(t)) >= 2 })
	if got := g.commits(t); got[1] != "qa-sha-0000002" {
		t.Errorf("second commit set %s, want qa-sha-0000002", got[1])
	}
	var st struct{ Cycles int }
	resp, err := http.Get(base + "/status")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if st.Cycles != 1 {
		t.Errorf("%d cycles ran; the newer image should have come by the pass asked for at its age, not by a poll", st.Cycles)
	}
	if msg := gitOut(t, g.bareDir(), "log", "-1", "--format=%B", "main"); !strings.Contains(msg, "gates passed: minAge 3s") {
		t.Errorf("the commit message does not name the gates passed:\n%s", msg)
	}
}

// TestScanGate: the newest image has CRITICAL findings, the one below it a
// clean scan, the oldest none: with maxSeverity HIGH the clean one is
// committed and the newest reported; with require, an image without a
// finished scan is no candidate either. Scans come from moto's
// DescribeImageScanFindings (its DescribeImages has no summary).
func TestScanGate(t *testing.T) {
	g := newGatesEnv(t, "scanned", "qa-sha-0000001", "qa-sha-0000002", "qa-sha-0000003")
	ctx := t.Context()
	if err := moto.ScanImage(ctx, g.ecr, testpeers.SeedAccount, testpeers.SeedRegion, g.repo, "qa-sha-0000002", map[string]int{"LOW": 2}); err != nil {
		t.Fatal(err)
	}
	if err := moto.ScanImage(ctx, g.ecr, testpeers.SeedAccount, testpeers.SeedRegion, g.repo, "qa-sha-0000003", map[string]int{"CRITICAL": 2, "HIGH": 1}); err != nil {
		t.Fatal(err)
	}
	g.config(t, `listen: ""`, "gates:\n  scan: {maxSeverity: HIGH, require: true}\n")
	stdout, stderr, code := g.once(t)
	if code != 0 || !strings.Contains(stdout, "1 change(s), pushed") {
		t.Fatalf("once: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if got := g.commits(t); len(got) != 1 || got[0] != "qa-sha-0000002" {
		t.Errorf("commits set %v, want qa-sha-0000002 (0000003 has CRITICAL findings)", got)
	}
	if !strings.Contains(stderr, `tag=qa-sha-0000003 gate=scan reason="2 CRITICAL, 1 HIGH finding(s)"`) {
		t.Errorf("the newest image was not reported as gated by its scan:\n%s", stderr)
	}

	// A newer image without a scan: with require, it waits; the marker
	// stays and says why.
	g.push(t, "qa-sha-0000004")
	stdout, stderr, code = g.once(t)
	if code != 0 || !strings.Contains(stdout, "up to date") {
		t.Fatalf("once after an unscanned push: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, `tag=qa-sha-0000004 gate=scan reason="no finished scan (not scanned), and the scan is required"`) {
		t.Errorf("the unscanned image was not reported:\n%s", stderr)
	}
}

// TestScanGateReadsTheSummary: where ECR's DescribeImages carries the scan
// summary (basic and enhanced scanning do; moto does not, so a proxy in
// front of it adds the summary as ECR's API documents it), the gate reads
// it there and asks DescribeImageScanFindings nothing; a cycle with
// nothing new asks ECR for no scan at all.
func TestScanGateReadsTheSummary(t *testing.T) {
	g := newGatesEnv(t, "summarised")
	ctx := t.Context()
	digests := map[string]string{}
	for _, tag := range []string{"qa-sha-0000001", "qa-sha-0000002"} {
		time.Sleep(1100 * time.Millisecond)
		d, err := testpeers.PushImage(ctx, g.ecr, testpeers.SeedAccount, g.repo, tag)
		if err != nil {
			t.Fatal(err)
		}
		digests[tag] = d
	}
	proxy := testpeers.NewECRProxy(moto.Endpoint)
	defer proxy.Close()
	proxy.SetScanSummary(digests["qa-sha-0000001"], testpeers.ScanSummary{Status: "COMPLETE", Counts: map[string]int32{}})
	proxy.SetScanSummary(digests["qa-sha-0000002"], testpeers.ScanSummary{Status: "ACTIVE", Counts: map[string]int32{"HIGH": 3}})
	cfg, _ := os.ReadFile(g.env.config)
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfg = []byte(strings.NewReplacer("endpoint: "+moto.Endpoint, "endpoint: "+proxy.URL,
		`listen: ""`, fmt.Sprintf("listen: \"127.0.0.1:%d\"\nschedule: \"@every 2s\"", port)).Replace(string(cfg)) + "gates:\n  scan: {maxSeverity: HIGH}\n")
	os.WriteFile(g.env.config, cfg, 0o644)
	startRun(t, g.env.config)
	cycles := func() int {
		var st struct{ Cycles int }
		resp, err := http.Get(base + "/status")
		if err != nil {
			return 0
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(&st)
		return st.Cycles
	}
	waitFor(t, "the first cycle", func() bool { return cycles() >= 1 })
	if got := g.commits(t); len(got) != 1 || got[0] != "qa-sha-0000001" {
		t.Errorf("commits set %v, want qa-sha-0000001 (0000002 has HIGH findings)", got)
	}
	ops := proxy.Ops()
	// A first cycle that ran past the schedule (a loaded machine) is
	// followed at once by the next, whose listing may be counted already:
	// one DescribeImages each, the scans being kept.
	if extra := cycles(); ops["DescribeImageScanFindings"] != 0 || ops["DescribeImages"] < 3 || ops["DescribeImages"] > 3+extra {
		t.Errorf("first cycle's ECR calls %v (%d cycles done); want 3 DescribeImages (the listing, one per candidate judged), one more per later cycle, and no DescribeImageScanFindings", ops, extra)
	}
	t.Logf("ECR calls, first cycle with the scan gate: %v", ops)
	// Cycles with nothing new ask for the listing alone: the scans are kept.
	from := cycles()
	waitFor(t, "two more cycles", func() bool { return cycles() >= from+2 })
	ops = proxy.Ops()
	n := cycles() - from
	if ops["DescribeImageScanFindings"] != 0 || ops["DescribeImages"] > n+1 {
		t.Errorf("ECR calls in about %d cycles with nothing new: %v; want one DescribeImages a cycle", n, ops)
	}
	t.Logf("ECR calls in about %d cycles with nothing new: %v", n, ops)
}

// TestSignatureGate: a signature gate trusting one cosign key, signatures
// in an OCI registry beside moto: the newest image, unsigned, is passed
// over for the signed one below it and the log says why; once it is signed
// it lands, and the commit names the key.
func TestSignatureGate(t *testing.T) {
	g := newGatesEnv(t, "signed")
	ctx := t.Context()
	reg := testpeers.NewRegistry()
	defer reg.Close()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := cryptoutils.MarshalPublicKeyToPEM(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "cosign.pub")
	os.WriteFile(keyFile, pem, 0o644)
	digests := map[string]string{}
	for _, tag := range []string{"qa-sha-0000001", "qa-sha-0000002"} {
		time.Sleep(1100 * time.Millisecond)
		d, err := testpeers.PushImage(ctx, g.ecr, testpeers.SeedAccount, g.repo, tag)
		if err != nil {
			t.Fatal(err)
		}
		digests[tag] = d
	}
	if err := reg.Sign(g.repo, digests["qa-sha-0000001"], testpeers.ECDSASigner(key)); err != nil {
		t.Fatal(err)
	}
	g.config(t, `listen: ""`, fmt.Sprintf("gates:\n  signature:\n    keys: [%q]\n    registry: %q\n", keyFile, reg.URL))
	stdout, stderr, code := g.once(t)
	if code != 0 || !strings.Contains(stdout, "1 change(s), pushed") {
		t.Fatalf("once: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if got := g.commits(t); len(got) != 1 || got[0] != "qa-sha-0000001" {
		t.Errorf("commits set %v, want qa-sha-0000001 (0000002 is not signed)", got)
	}
	want := `tag=qa-sha-0000002 gate=signature reason="not signed: no Sigstore bundle among its referrers and no tag ` + strings.Replace(digests["qa-sha-0000002"], ":", "-", 1) + `.sig"`
	if !strings.Contains(stderr, want) {
		t.Errorf("the unsigned image was not reported as gated (want %s):\n%s", want, stderr)
	}

	if err := reg.Sign(g.repo, digests["qa-sha-0000002"], testpeers.ECDSASigner(key)); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code = g.once(t)
	if code != 0 || !strings.Contains(stdout, "1 change(s), pushed") {
		t.Fatalf("once after signing: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if got := g.commits(t); len(got) != 2 || got[1] != "qa-sha-0000002" {
		t.Errorf("commits set %v, want qa-sha-0000002 last", got)
	}
	body := gitOut(t, g.bareDir(), "log", "-1", "--format=%B", "main")
	if !strings.Contains(body, "gates passed: signature by key "+keyFile) {
		t.Errorf("the commit does not name the key:\n%s", body)
	}
}

// TestSignatureGateKMSKey: a signature gate trusting a KMS key (cosign's
// awskms:/// form): the butler reads its public key from moto's KMS, the
// image signed with KMS's Sign passes and the commit names the key.
func TestSignatureGateKMSKey(t *testing.T) {
	g := newGatesEnv(t, "kms-signed")
	ctx := t.Context()
	reg := testpeers.NewRegistry()
	defer reg.Close()
	k := kms.New(kms.Options{Region: testpeers.SeedRegion, Credentials: testpeers.Credentials, BaseEndpoint: aws.String(moto.Endpoint)})
	key, err := k.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: kmstypes.KeySpecEccNistP256, KeyUsage: kmstypes.KeyUsageTypeSignVerify})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(key.KeyMetadata.Arn)
	kmsSign := func(payload []byte) ([]byte, error) {
		out, err := k.Sign(ctx, &kms.SignInput{KeyId: aws.String(arn), Message: payload,
			MessageType: kmstypes.MessageTypeRaw, SigningAlgorithm: kmstypes.SigningAlgorithmSpecEcdsaSha256})
		if err != nil {
			return nil, err
		}
		return out.Signature, nil
	}
	digest, err := testpeers.PushImage(ctx, g.ecr, testpeers.SeedAccount, g.repo, "qa-sha-0000001")
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Sign(g.repo, digest, kmsSign); err != nil {
		t.Fatal(err)
	}
	g.config(t, `listen: ""`, fmt.Sprintf("gates:\n  signature:\n    keys: [\"awskms:///%s\"]\n    registry: %q\n", arn, reg.URL))
	stdout, stderr, code := g.once(t)
	if code != 0 || !strings.Contains(stdout, "1 change(s), pushed") {
		t.Fatalf("once: exit %d\n%s\n%s", code, stdout, stderr)
	}
	body := gitOut(t, g.bareDir(), "log", "-1", "--format=%B", "main")
	if !strings.Contains(body, "gates passed: signature by KMS key "+arn) {
		t.Errorf("the commit does not name the KMS key:\n%s", body)
	}
}
