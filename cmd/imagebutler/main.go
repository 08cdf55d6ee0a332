// Command imagebutler keeps Kubernetes manifests in git pointed at the
// newest matching image in AWS ECR.
//
// Usage:
//
//	imagebutler run --config FILE            the service: cycles on the schedule
//	imagebutler once --config FILE           run one cycle and exit
//	imagebutler check [--config FILE] DIR... lint annotations and markers offline
//	imagebutler version                      print the version
//
// `imagebutler help` lists every command and flag.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/imagebutler/imagebutler/cluster"
	"github.com/imagebutler/imagebutler/scanner"
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

// command is one subcommand: its flags, and what it does with them.
type command struct {
	name, args, summary string
	// define declares the command's flags on fs and returns what runs it
	// with the positional arguments once they are parsed.
	define func(fs *flag.FlagSet, stdout, stderr io.Writer) func(ctx context.Context, args []string) error
}

var commands = []command{
	{"run", "--config FILE", "the service: cycles on the schedule, HTTP /healthz /readyz /metrics /status", defineRun},
	{"once", "--config FILE [--dry-run]", "run one cycle: sync, select, rewrite, commit, push; exit 0 when every repository succeeded", defineOnce},
	{"check", "[--config FILE | --region R] [--ecr] DIR...", "lint annotations and markers offline (with --ecr, also list ECR); exit 1 on errors", defineCheck},
	{"migrate", "flux [--ecr] [--output json] [--write FILE] FILE...", "write the imagebutler.yaml that replaces exported Flux image automation objects, say what does not carry over, and (--ecr) compare each ImagePolicy's latestRef with imagebutler's pick; exit 1 on a difference", defineMigrate},
	{"check-config", "--config FILE", "validate the configuration file and exit: 0 when it is valid, 2 with every problem (an init container runs it)", defineCheckConfig},
	{"version", "", "print the version, commit, Go version and platform", defineVersion},
}

// usage lists every command with its flags.
func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: imagebutler COMMAND [FLAGS] [ARGS]")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	for _, c := range commands {
		fmt.Fprintln(w)
		fs := c.flagSet()
		c.define(fs, io.Discard, io.Discard)
		commandUsage(w, c, fs)
	}
	fmt.Fprintln(w, "\n`imagebutler COMMAND --help` shows one command; `imagebutler --version` the version.")
}

func commandUsage(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "%s\n  %s\n", strings.TrimSpace("imagebutler "+c.name+" "+c.args), c.summary)
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintln(w, "Flags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}

func (c command) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, help goes to stdout
	return fs
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return &exitError{2, errors.New("no command given")}
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return nil
	case "--version", "-version":
		fmt.Fprintln(stdout, readBuildInfo())
		return nil
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		fs := c.flagSet()
		runCmd := c.define(fs, stdout, stderr)
		positional, err := parseInterspersed(fs, args[1:])
		if errors.Is(err, flag.ErrHelp) {
			commandUsage(stdout, c, fs)
			return nil
		}
		if err != nil {
			return &exitError{2, fmt.Errorf("%s: %w (see imagebutler %s --help)", c.name, err, c.name)}
		}
		return runCmd(ctx, positional)
	}
	return &exitError{2, fmt.Errorf("unknown command %q (commands: %s; see imagebutler --help)", args[0], commandNames())}
}

func commandNames() string {
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

// parseInterspersed parses flags wherever they stand among the positional
// arguments (`check apps/ --region us-east-2`); after "--" everything is
// positional. It returns the positional arguments in order.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// noArgs is for commands that take no positional argument.
func noArgs(name string, args []string) error {
	if len(args) > 0 {
		return &exitError{2, fmt.Errorf("%s takes no arguments, got %q (see imagebutler %s --help)", name, args, name)}
	}
	return nil
}

func defineCheckConfig(fs *flag.FlagSet, stdout, _ io.Writer) func(context.Context, []string) error {
	configFile := fs.String("config", "imagebutler.yaml", "configuration `file`")
	return func(_ context.Context, args []string) error {
		if err := noArgs("check-config", args); err != nil {
			return err
		}
		cfg, err := loadConfig(*configFile)
		if err != nil {
			return &exitError{2, err}
		}
		fmt.Fprintf(stdout, "%s: valid, %d repositories, schedule %s\n", *configFile, len(cfg.Repositories), cfg.Schedule)
		if c := cfg.Cluster; c != nil {
			// Which Lease each repository's work follows.
			fmt.Fprintf(stdout, "cluster: %s\n", c)
			for _, r := range cfg.Repositories {
				n := cluster.Shard(r.Name(), c.Shards)
				fmt.Fprintf(stdout, "  shard %d (Lease %s-shard-%d): %s\n", n, c.LeasePrefix, n, r.Name())
			}
		}
		return nil
	}
}

func defineVersion(fs *flag.FlagSet, stdout, _ io.Writer) func(context.Context, []string) error {
	return func(_ context.Context, args []string) error {
		if err := noArgs("version", args); err != nil {
			return err
		}
		fmt.Fprintln(stdout, readBuildInfo())
		return nil
	}
}

func defineOnce(fs *flag.FlagSet, stdout, stderr io.Writer) func(context.Context, []string) error {
	st := newSetup(fs, stderr, "text", "json, text, or auto (logs go to stderr)")
	dryRun := fs.Bool("dry-run", false, "print the diff each repository would commit; push nothing")
	return func(ctx context.Context, args []string) error {
		if err := noArgs("once", args); err != nil {
			return err
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
		verifier, err := newVerifier(ctx, lister, cfg, log)
		if err != nil {
			return err
		}
		opts := []scanner.Option{scanner.WithSignatures(verifier)}
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
}
