package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/migrate"
)

// errDiffers says migrate found policies whose picks differ from Flux's.
var errDiffers = errors.New("imagebutler's picks differ from Flux's")

// defineMigrate declares `imagebutler migrate flux FILE...`: the config
// that replaces the Flux objects in FILEs, what does not carry over, and
// (with --ecr) each ImagePolicy's latestRef against imagebutler's pick.
func defineMigrate(fs *flag.FlagSet, stdout, _ io.Writer) func(context.Context, []string) error {
	withECR := fs.Bool("ecr", false, "list ECR and compare imagebutler's pick for each ImagePolicy with its status.latestRef")
	configFile := fs.String("config", "", "with --ecr, the AWS settings of this configuration `file` (else --region, --endpoint and the AWS environment)")
	region := fs.String("region", "", "with --ecr and no --config, the AWS `region` (default: AWS_REGION, else AWS_DEFAULT_REGION)")
	endpoint := fs.String("endpoint", "", "with --ecr and no --config, the ECR `URL` (LocalStack, moto)")
	write := fs.String("write", "", "write the configuration to `file` instead of printing it")
	stateDir := fs.String("state-dir", "/var/lib/imagebutler", "stateDir of the configuration written")
	output := fs.String("output", "text", "`format`: text, or json")
	return func(ctx context.Context, args []string) error {
		if len(args) < 2 || args[0] != "flux" {
			return &exitError{2, errors.New("usage: imagebutler migrate flux [--ecr] FILE... (files of exported GitRepository, ImageUpdateAutomation, ImageRepository and ImagePolicy objects: flux export source git --all > flux.yaml; flux export image all --all >> flux.yaml, or kubectl get -o yaml)")}
		}
		if *output != "text" && *output != "json" {
			return &exitError{2, fmt.Errorf("migrate: --output %q is not text or json", *output)}
		}
		plan, err := migrate.Flux(args[1:], *stateDir)
		if err != nil && plan == nil {
			return &exitError{2, err}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "imagebutler: %v\n", err)
		}
		var lister migrate.Lister
		if *withECR {
			aws := config.DefaultAWS(*region, *endpoint)
			if *region == "" {
				aws.Region = config.EnvRegion()
			}
			if *configFile != "" {
				cfg, err := loadConfig(*configFile)
				if err != nil {
					return &exitError{2, err}
				}
				aws = cfg.AWS
			}
			l, err := newLister(ctx, aws)
			if err != nil {
				return err
			}
			lister = l
		}
		differs := plan.Compare(ctx, lister)
		if *write != "" {
			if err := os.WriteFile(*write, []byte(plan.Config), 0o644); err != nil {
				return err
			}
		}
		if *output == "json" {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			enc.SetEscapeHTML(false)
			if err := enc.Encode(plan); err != nil {
				return err
			}
		} else {
			printPlan(stdout, plan, *write)
		}
		if differs {
			return &exitError{1, errDiffers}
		}
		return nil
	}
}

// printPlan prints the configuration (or where it was written), the
// warnings and the comparison.
func printPlan(w io.Writer, p *migrate.Plan, written string) {
	if written != "" {
		fmt.Fprintf(w, "wrote %s\n", written)
	} else {
		fmt.Fprintf(w, "--- imagebutler.yaml\n%s---\n", p.Config)
	}
	if len(p.Warnings) > 0 {
		fmt.Fprintf(w, "\n%d field(s) that do not carry over as they are:\n", len(p.Warnings))
		for _, warning := range p.Warnings {
			fmt.Fprintf(w, "warning: %s\n", warning)
		}
	}
	if len(p.Policies) == 0 {
		return
	}
	fmt.Fprintln(w, "\nImagePolicies: Flux's status.latestRef against imagebutler's pick")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "POLICY\tFLUX\tIMAGEBUTLER\tRESULT\n")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, pol := range p.Policies {
		result := pol.Result
		if pol.Skip != "" {
			result += ": " + pol.Skip
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", pol.ID, dash(pol.FluxTag), dash(pol.Pick), result)
	}
	tw.Flush()
}
