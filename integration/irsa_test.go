package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
)

// TestIRSA runs `once` with only what EKS sets for IRSA (AWS_ROLE_ARN and
// AWS_WEB_IDENTITY_TOKEN_FILE, no keys): the SDK's default chain trades the
// token for credentials with STS AssumeRoleWithWebIdentity (moto's), and the
// cycle lists ECR with them.
func TestIRSA(t *testing.T) {
	needPeers(t)
	ctx := t.Context()
	const role = "arn:aws:iam::" + prdAccount + ":role/imagebutler"
	repo := "lrl_falcon_irsa"
	e := setupRepo(t, "irsa", strings.ReplaceAll(testpeers.SeedDeployment, testpeers.SeedRepository, repo))
	// moto keeps what a role's calls create in the role's account: the ECR
	// repository is made as that role, after the commit that set the marker.
	c, err := moto.AssumedECR(ctx, testpeers.SeedRegion, role)
	if err != nil {
		t.Fatal(err)
	}
	if err := testpeers.CreateRepository(ctx, c, prdAccount, repo); err != nil && !strings.Contains(err.Error(), "AlreadyExists") {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // git and moto keep whole seconds
	if _, err := testpeers.PushImage(ctx, c, prdAccount, repo, fmt.Sprintf("qa-sha-%07d", time.Now().Unix()%10000000)); err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(e.dir, "web-identity-token")
	// A JWT as EKS projects it; moto does not verify its signature.
	os.WriteFile(token, []byte("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6aW1hZ2VidXRsZXI6aW1hZ2VidXRsZXIifQ.c2ln"), 0o600)
	cmd := exec.Command(binary, "once", "--config", e.config, "--log-level", "debug")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env,
		"AWS_REGION=us-east-2",
		"AWS_ROLE_ARN="+role,
		"AWS_WEB_IDENTITY_TOKEN_FILE="+token,
		"AWS_ROLE_SESSION_NAME=imagebutler",
		"AWS_ENDPOINT_URL_STS="+moto.Endpoint,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("once with IRSA: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "1 change(s), pushed ") {
		t.Errorf("once with IRSA pushed nothing:\n%s\n%s", stdout.String(), stderr.String())
	}
}
