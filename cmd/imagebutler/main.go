// Command imagebutler keeps Kubernetes manifests in git pointed at the
// newest matching image in AWS ECR.
//
// Usage:
//
//	imagebutler run --config FILE         the service: cycles on the schedule
//	imagebutler once --config FILE        run one cycle and exit
//	imagebutler check [--config FILE] DIR... lint annotations and markers offline
//	imagebutler version                   print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/imagebutler/imagebutler/scanner"
)

// Set at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

// exitError carries a process exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		code := 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		if ee == nil || (ee.err != errFailed && ee.err != errCheckFailed) {
			fmt.Fprintln(os.Stderr, "imagebutler:", err)
		}
		os.Exit(code)
	}
}

// errFailed says repositories failed; their summaries already said why.
var errFailed = errors.New("one or more repositories failed")

const usage = `usage:
  imagebutler run --config FILE             the service: cycles on the schedule, HTTP /healthz /readyz /metrics /status
  imagebutler once --config FILE [--dry-run] run one cycle: sync, select, rewrite, commit, push
  imagebutler check [--config FILE] DIR...  lint annotations and markers offline; exit 1 on errors
  imagebutler version                       print the version and commit`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &exitError{2, errors.New(usage)}
	}
	switch args[0] {
	case "run":
		return serve(ctx, args[1:], stdout, stderr)
	case "once":
		return once(ctx, args[1:], stdout, stderr)
	case "check":
		return check(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "imagebutler %s (commit %s)\n", version, commit)
		return nil
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return &exitError{2, fmt.Errorf("unknown command %q\n%s", args[0], usage)}
}

func once(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("once", flag.ContinueOnError)
	fs.SetOutput(stderr)
	st := newSetup(fs, stderr, "text", "json, text, or auto (logs go to stderr)")
	dryRun := fs.Bool("dry-run", false, "print the diff each repository would commit; push nothing")
	if err := fs.Parse(args); err != nil {
		return &exitError{2, err}
	}
	cfg, log, release, err := st.load()
	if err != nil {
		return err
	}
	defer release()
	lister, err := scanner.NewECR(ctx, cfg.AWS, nil, log)
	if err != nil {
		return err
	}
	var opts []scanner.Option
	if *dryRun {
		opts = append(opts, scanner.WithDryRun())
	}
	failed := false
	for _, r := range scanner.New(cfg, lister, log, opts...).RunOnce(ctx) {
		fmt.Fprintln(stdout, r.Summary())
		if r.Diff != "" {
			fmt.Fprint(stdout, r.Diff)
		}
		failed = failed || r.Err != nil
	}
	if failed {
		return &exitError{1, errFailed}
	}
	return nil
}
