// Command demo shows one imagebutler cycle end to end on this machine: it
// starts a moto server (ECR) and git http-backend on loopback, seeds an ECR
// repository and a git repository holding the seed guide's Deployment, runs
// one cycle as `imagebutler once` would, and prints the commit it pushed.
// Every process it starts is stopped before it exits.
//
//	go run ./integration/demo
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
	"github.com/imagebutler/imagebutler/scanner"
)

func main() {
	// SIGPIPE too: a reader that goes away (`| head`) stops the demo through
	// its deferred clean-up instead of killing it with moto left running.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	if err := testpeers.MotoAvailable(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "imagebutler-demo-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	fmt.Printf("starting moto (ECR) and git http-backend on 127.0.0.1, in %s ...\n", dir)
	moto, err := testpeers.StartMoto(ctx)
	if err != nil {
		return err
	}
	defer moto.Stop()
	fmt.Printf("moto answers at %s (pid %d)\n", moto.Endpoint, moto.PID())
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo", "AWS_REGION": testpeers.SeedRegion} {
		os.Setenv(k, v)
	}
	for _, k := range []string{"AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECR"} {
		os.Unsetenv(k)
	}

	fmt.Printf("pushing tags to ECR %s/%s (a second apart) ...\n", testpeers.SeedAccount, testpeers.SeedRepository)
	if err := testpeers.SeedECR(ctx, moto.ECR(testpeers.SeedRegion)); err != nil {
		return err
	}

	root := filepath.Join(dir, "remote")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	const user, token = "butler", "demo-token"
	git, err := testpeers.NewGitServer(root, user, token)
	if err != nil {
		return err
	}
	defer git.Close()
	url, err := git.InitRepo("apps", "main", map[string]string{"apps/bartender/deployment.yaml": testpeers.SeedDeployment})
	if err != nil {
		return err
	}
	fmt.Printf("git repository %s holds the seed guide's Deployment at %s\n", url, testpeers.SeedOldTag)

	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		return err
	}
	cfgFile := filepath.Join(dir, "imagebutler.yaml")
	cfgText := fmt.Sprintf(`stateDir: %s
listen: ""
aws: {region: %s, endpoint: %q}
git:
  author: {name: "Light Account Butler", email: "butler@example.com"}
repositories:
  - url: %s
    branch: main
    auth: {username: %s, tokenFile: %s}
`, filepath.Join(dir, "state"), testpeers.SeedRegion, moto.Endpoint, url, user, tokenFile)
	if err := os.WriteFile(cfgFile, []byte(cfgText), 0o600); err != nil {
		return err
	}
	fmt.Printf("\n--- %s\n%s---\n\n", "imagebutler.yaml", cfgText)

	cfg, err := config.Load(cfgFile)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	lister, err := scanner.NewECR(ctx, cfg.AWS, nil, log)
	if err != nil {
		return err
	}
	fmt.Println("imagebutler once:")
	for _, r := range scanner.New(cfg, lister, log).RunOnce(ctx) {
		fmt.Println("  " + r.Summary())
		if r.Err != nil {
			return r.Err
		}
	}

	clone := filepath.Join(dir, "clone")
	if _, err := testpeers.Git("", "clone", "--quiet", filepath.Join(root, "apps.git"), clone); err != nil {
		return err
	}
	show, err := testpeers.Git(clone, "show", "--format=commit %H%nAuthor: %an <%ae>%n%n%B", "HEAD")
	if err != nil {
		return err
	}
	fmt.Printf("\nthe commit the butler pushed:\n\n%s", show)
	fmt.Print(nextStep)
	return nil
}

// nextStep is the demo's last word: what to run on one's own manifests.
const nextStep = `
next: see what the butler would pick in your own manifests, with your AWS credentials and no git access:
  go run ./cmd/imagebutler check --ecr --region us-east-2 path/to/your/manifests
then write an imagebutler.yaml for your repository (docs/configuration.md) and try it without pushing:
  go run ./cmd/imagebutler once --dry-run --config imagebutler.yaml
`
