package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/gitwriter"
	"github.com/imagebutler/imagebutler/policy"
	"github.com/imagebutler/imagebutler/scanner"
)

// errCheckFailed says check found errors; it printed them.
var errCheckFailed = errors.New("check found errors")

// check lints the annotations and markers under each DIR offline.
func check(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "", "configuration `file` (for aws.region)")
	region := fs.String("region", "", "AWS `region` of annotations that give a bare account id (default: aws.region of --config)")
	namespace := fs.String("namespace", "", "fallback `namespace` of objects that name none")
	if err := fs.Parse(args); err != nil {
		return &exitError{2, err}
	}
	if fs.NArg() == 0 {
		return &exitError{2, errors.New("check: name at least one DIR")}
	}
	if *configFile != "" && *region == "" {
		cfg, err := config.Load(*configFile)
		if err != nil {
			return &exitError{2, err}
		}
		*region = cfg.AWS.Region
	}
	failed := false
	for i, dir := range fs.Args() {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		if checkDir(stdout, dir, *region, *namespace) {
			failed = true
		}
	}
	if failed {
		return &exitError{1, errCheckFailed}
	}
	return nil
}

// checkDir prints what dir holds and reports whether it found errors.
func checkDir(w io.Writer, dir, region, namespace string) (failed bool) {
	fmt.Fprintf(w, "%s\n", dir)
	tree, err := gitwriter.Discover(dir, []string{"."}, namespace)
	if err != nil {
		fmt.Fprintf(w, "error: %v\n", err)
		return true
	}
	defer tree.Close()
	found, problems := scanner.FindPolicies(tree, region)

	ids := make([]string, 0, len(found))
	for id := range found {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "POLICY\tIMAGE\tFILTER\tORDER\tDEFINED IN\n")
	for _, id := range ids {
		f := found[id]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s (%s)\n", id, f.Image.Name(), f.Filter(), f.Ordering(), f.File, f.Object)
	}
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "MARKER\tPOLICY\tSETTER\tVALUE\tSTATE\n")
	for _, m := range tree.Markers {
		setter, state := string(m.Setter), "ok"
		if setter == "" {
			setter = "image"
		}
		switch f, ok := found[m.Policy]; {
		case !ok:
			state = "no such policy"
			problems = append(problems, fmt.Errorf("%s: marker %s: %w", m.Location(), m.Policy, gitwriter.ErrUnknownPolicy))
		case f.Err != nil:
			state = f.Err.Error()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.Location(), m.Policy, setter, m.Value, state)
	}
	tw.Flush()

	problems = append(problems, tree.Problems...)
	if len(problems) > 0 {
		fmt.Fprintln(w)
	}
	for _, p := range problems {
		kind := "error"
		var ae *policy.AnnotationError
		var fe *gitwriter.FileError
		if errors.As(p, &ae) && ae.Warning || errors.As(p, &fe) && fe.Warning {
			kind = "warning"
		} else {
			failed = true
		}
		fmt.Fprintf(w, "%s: %v\n", kind, p)
	}
	return failed
}
