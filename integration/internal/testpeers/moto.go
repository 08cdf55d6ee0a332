package testpeers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// MotoAvailable reports why moto cannot run here, or nil when it can.
func MotoAvailable() error {
	out, err := exec.Command("python3", "-c", "import moto.server").CombinedOutput()
	if err != nil {
		return fmt.Errorf("python3 cannot import moto (it ships with this machine's Python 3.11): %v: %s", err, out)
	}
	return nil
}

// Moto is a moto server process.
type Moto struct {
	// Endpoint is the server's base URL, such as http://127.0.0.1:41234.
	Endpoint string
	cmd      *exec.Cmd
	done     chan struct{}
	stdin    io.Closer // held open while this process runs
}

// motoWatchdog runs moto.server's main with the arguments, and exits as soon
// as standard input reaches its end.
const motoWatchdog = `import os, sys, threading
def watch():
    sys.stdin.buffer.read()
    os._exit(0)
threading.Thread(target=watch, daemon=True).start()
from moto.server import main
main(sys.argv[1:])
`

// PID is the moto process id.
func (m *Moto) PID() int { return m.cmd.Process.Pid }

// StartMoto starts `python3 -m moto.server` on a free loopback port in its
// own process group and waits until it answers. extraEnv is added to its
// environment (MOTO_ACCOUNT_ID, say).
func StartMoto(ctx context.Context, extraEnv ...string) (*Moto, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("python3", "-c", motoWatchdog, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	// moto runs botocore, which must not see the caller's AWS settings.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logFile, err := os.CreateTemp("", "moto-*.log")
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// moto reads its standard input until it closes, which it does when this
	// process ends however it ends (even SIGKILL): then moto exits too.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting moto: %w", err)
	}
	m := &Moto{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, done: make(chan struct{}), stdin: stdin}
	go func() { cmd.Wait(); close(m.done) }()

	deadline := time.Now().Add(3 * time.Minute)
	for {
		resp, err := http.Get(m.Endpoint + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return m, nil
		}
		select {
		case <-m.done:
			log, _ := os.ReadFile(logFile.Name())
			return nil, fmt.Errorf("moto exited before answering: %s", log)
		case <-ctx.Done():
			m.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.Stop()
			return nil, errors.New("moto did not answer within 3m")
		}
	}
}

// Stop kills the server's process group and waits for it.
func (m *Moto) Stop() {
	if m == nil || m.cmd.Process == nil {
		return
	}
	syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
	<-m.done
}

// Credentials are the static keys tests use against moto.
var Credentials = credentials.NewStaticCredentialsProvider("testing", "testing", "")

// ECR returns a client of the server's ECR in region.
func (m *Moto) ECR(region string) *ecr.Client {
	return ecr.New(ecr.Options{
		Region:       region,
		Credentials:  Credentials,
		BaseEndpoint: aws.String(m.Endpoint),
	})
}

// CreateRepository creates an ECR repository under registryID.
func CreateRepository(ctx context.Context, c *ecr.Client, registryID, name string) error {
	_, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(name), RegistryId: aws.String(registryID)})
	if err != nil {
		return fmt.Errorf("creating ECR repository %s: %w", name, err)
	}
	return nil
}

// PushImage puts an image manifest with its own layer (so its digest is
// unique) into the repository, tagged tag, and returns its digest.
func PushImage(ctx context.Context, c *ecr.Client, registryID, repo, tag string) (string, error) {
	return PushImageTags(ctx, c, registryID, repo, tag)
}

// PushImageTags puts one image (its own layer, named after the first tag)
// into the repository under every tag, and returns its digest.
func PushImageTags(ctx context.Context, c *ecr.Client, registryID, repo string, tags ...string) (string, error) {
	layer := sha256.Sum256([]byte(repo + "/" + tags[0]))
	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",`+
		`"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":7023,"digest":"sha256:%s"},`+
		`"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":32654,"digest":"sha256:%s"}]}`,
		hex.EncodeToString(layer[:]), hex.EncodeToString(layer[:]))
	var digest string
	for _, tag := range tags {
		out, err := c.PutImage(ctx, &ecr.PutImageInput{
			RepositoryName: aws.String(repo),
			RegistryId:     aws.String(registryID),
			ImageManifest:  aws.String(manifest),
			ImageTag:       aws.String(tag),
		})
		if err != nil {
			return "", fmt.Errorf("pushing %s:%s: %w", repo, tag, err)
		}
		digest = aws.ToString(out.Image.ImageId.ImageDigest)
	}
	return digest, nil
}

// Reset forgets everything the server holds (moto's /moto-api/reset).
func (m *Moto) Reset(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.Endpoint+"/moto-api/reset", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("resetting moto: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("resetting moto: %s", resp.Status)
	}
	return nil
}

// HelmChartConfigType is the config media type of a Helm chart in an OCI
// registry, which ECR reports as the chart's artifactMediaType.
const HelmChartConfigType = "application/vnd.cncf.helm.config.v1+json"

// PushChart puts a Helm chart's OCI manifest (as `helm push` makes it) into
// the repository, tagged version, and returns its digest. moto does not
// report its artifact type: an ECRProxy's SetArtifactType does.
func PushChart(ctx context.Context, c *ecr.Client, registryID, repo, version string) (string, error) {
	layer := sha256.Sum256([]byte("chart " + repo + "/" + version))
	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":%q,"size":117,"digest":"sha256:%s"},`+
		`"layers":[{"mediaType":"application/vnd.cncf.helm.chart.content.v1.tar+gzip","size":4096,"digest":"sha256:%s"}]}`,
		HelmChartConfigType, hex.EncodeToString(layer[:]), hex.EncodeToString(layer[:]))
	out, err := c.PutImage(ctx, &ecr.PutImageInput{
		RepositoryName:         aws.String(repo),
		RegistryId:             aws.String(registryID),
		ImageManifest:          aws.String(manifest),
		ImageManifestMediaType: aws.String("application/vnd.oci.image.manifest.v1+json"),
		ImageTag:               aws.String(version),
	})
	if err != nil {
		return "", fmt.Errorf("pushing chart %s:%s: %w", repo, version, err)
	}
	return aws.ToString(out.Image.ImageId.ImageDigest), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// AssumedECR returns an ECR client of the server acting as roleARN, whose
// calls moto places in the role's account.
func (m *Moto) AssumedECR(ctx context.Context, region, roleARN string) (*ecr.Client, error) {
	stsClient := sts.New(sts.Options{Region: region, Credentials: Credentials, BaseEndpoint: aws.String(m.Endpoint)})
	out, err := stsClient.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN), RoleSessionName: aws.String("seed")})
	if err != nil {
		return nil, fmt.Errorf("assuming %s: %w", roleARN, err)
	}
	c := out.Credentials
	return ecr.New(ecr.Options{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken)),
		BaseEndpoint: aws.String(m.Endpoint),
	}), nil
}

// DeleteImage deletes the image tagged tag from the repository, as a
// lifecycle rule or a person would.
func DeleteImage(ctx context.Context, c *ecr.Client, registryID, repo, tag string) error {
	out, err := c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{
		RepositoryName: aws.String(repo),
		RegistryId:     aws.String(registryID),
		ImageIds:       []types.ImageIdentifier{{ImageTag: aws.String(tag)}},
	})
	if err != nil {
		return fmt.Errorf("deleting %s:%s: %w", repo, tag, err)
	}
	if len(out.Failures) > 0 {
		return fmt.Errorf("deleting %s:%s: %s", repo, tag, aws.ToString(out.Failures[0].FailureReason))
	}
	return nil
}

// ScanImage starts the scan of repo:tag (StartImageScan) and sets what
// moto's DescribeImageScanFindings answers for it: a finished scan with
// counts (findingSeverityCounts). moto's DescribeImages reports no scan.
func (m *Moto) ScanImage(ctx context.Context, c *ecr.Client, registryID, region, repo, tag string, counts map[string]int) error {
	result := map[string]any{
		"registryId":      registryID,
		"repositoryName":  repo,
		"imageId":         map[string]string{"imageTag": tag},
		"imageScanStatus": map[string]string{"status": "COMPLETE", "description": "The scan was completed successfully."},
		"imageScanFindings": map[string]any{
			"findings":              []any{},
			"findingSeverityCounts": counts,
		},
	}
	// Kept in the backend of the caller's account (moto's default), where
	// a repository made with another registryId lives too.
	body, _ := json.Marshal(map[string]any{"results": []any{result}, "region": region})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.Endpoint+"/moto-api/static/ecr/scan-finding-results", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("setting scan findings: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("setting scan findings: %s", resp.Status)
	}
	_, err = c.StartImageScan(ctx, &ecr.StartImageScanInput{
		RepositoryName: aws.String(repo), RegistryId: aws.String(registryID), ImageId: &types.ImageIdentifier{ImageTag: aws.String(tag)},
	})
	if err != nil {
		return fmt.Errorf("starting the scan of %s:%s: %w", repo, tag, err)
	}
	return nil
}
