package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/gate"
	"github.com/imagebutler/imagebutler/gitwriter"
	"github.com/imagebutler/imagebutler/policy"
	"github.com/imagebutler/imagebutler/scanner"
)

// errCheckFailed says check found errors; it printed them.
var errCheckFailed = errors.New("check found errors")

// newLister makes the ECR lister of check --ecr; tests replace it.
var newLister = func(ctx context.Context, settings config.AWS) (scanner.Lister, error) {
	return scanner.NewECR(ctx, settings, nil, checkLog())
}

// checkLog is check's logger: warnings only, as text on stderr (the
// report is on stdout).
func checkLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// defineCheck declares the flags of `imagebutler check`, which lints the
// annotations and markers under each DIR offline, or with --ecr also lists
// ECR and explains each policy's choice.
func defineCheck(fs *flag.FlagSet, stdout, _ io.Writer) func(context.Context, []string) error {
	configFile := fs.String("config", "", "configuration `file` (for aws.region)")
	region := fs.String("region", "", "AWS `region` of annotations that give a bare account id (default: aws.region of --config, else AWS_REGION, else AWS_DEFAULT_REGION)")
	namespace := fs.String("namespace", "", "fallback `namespace` of objects that name none")
	withECR := fs.Bool("ecr", false, "also list ECR and show each policy's candidates and choice (AWS settings from --config, else --region, --endpoint and the AWS environment)")
	endpoint := fs.String("endpoint", "", "with --ecr and no --config, the ECR `URL` (LocalStack, moto); AWS_ENDPOINT_URL_ECR also works")
	candidates := fs.Int("candidates", 5, "with --ecr, how many candidates and dropped tags to show per policy")
	output := fs.String("output", "text", "`format` of the report: text, or json (one object per DIR, in a list)")
	return func(ctx context.Context, dirs []string) error {
		return check(ctx, stdout, dirs, checkOptions{configFile: *configFile, region: *region, endpoint: *endpoint, namespace: *namespace,
			withECR: *withECR, candidates: *candidates, output: *output})
	}
}

// checkOptions are check's flags.
type checkOptions struct {
	configFile, region, endpoint, namespace string
	withECR                                 bool
	candidates                              int
	output                                  string
}

func check(ctx context.Context, stdout io.Writer, dirs []string, o checkOptions) error {
	configFile, region, namespace, withECR, candidates := o.configFile, o.region, o.namespace, o.withECR, o.candidates
	if len(dirs) == 0 {
		return &exitError{2, errors.New("check: name at least one DIR")}
	}
	if o.output != "text" && o.output != "json" {
		return &exitError{2, fmt.Errorf("check: --output %q is not text or json", o.output)}
	}
	if o.endpoint != "" && configFile != "" {
		return &exitError{2, errors.New("check: --endpoint is for use without --config (whose aws.endpoint it would hide)")}
	}
	var (
		lister      scanner.Lister
		butlerEmail string
		limits      gitwriter.Limits // zero: the defaults
		gates       config.Gates
		verifier    gate.Verifier
	)
	if configFile != "" {
		cfg, err := loadConfig(configFile)
		if err != nil {
			return &exitError{2, err}
		}
		if region == "" {
			region = cfg.AWS.Region
		}
		butlerEmail = cfg.Git.Author.Email
		limits = scanner.Limits(cfg)
		gates = cfg.Gates
		if withECR {
			if lister, err = newLister(ctx, cfg.AWS); err != nil {
				return err
			}
			if verifier, err = newVerifier(ctx, lister, cfg, checkLog()); err != nil {
				return err
			}
		}
	}
	if region == "" {
		region = config.EnvRegion()
	}
	if withECR && lister == nil {
		// No config: the AWS settings of the flags and the environment.
		var err error
		if lister, err = newLister(ctx, config.DefaultAWS(region, o.endpoint)); err != nil {
			return err
		}
	}
	text := stdout
	if o.output == "json" {
		text = io.Discard
	}
	c := checker{w: text, region: region, namespace: namespace, lister: lister, candidates: candidates, butlerEmail: butlerEmail, limits: limits,
		gates: gates, gateChecker: &gate.Checker{}}
	if sc, ok := lister.(gate.Scanner); ok {
		c.gateChecker.Scans = sc
	}
	c.gateChecker.Signatures = verifier
	failed := false
	reports := []*dirReport{}
	for i, dir := range dirs {
		if i > 0 {
			fmt.Fprintln(text)
		}
		c.rep = &dirReport{Dir: dir, Policies: []*policyReport{}, Markers: []markerReport{}, Problems: []problemReport{}}
		reports = append(reports, c.rep)
		if c.dir(ctx, dir) {
			failed = true
		}
	}
	if o.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(reports); err != nil {
			return err
		}
	}
	if failed {
		return &exitError{1, errCheckFailed}
	}
	return nil
}

// checker prints what directories hold.
type checker struct {
	w                 io.Writer
	region, namespace string
	lister            scanner.Lister // nil: offline
	candidates        int
	butlerEmail       string // git.author.email of --config: whose commits are the butler's
	limits            gitwriter.Limits
	gates             config.Gates // the top-level gates of --config
	gateChecker       *gate.Checker
	rep               *dirReport // what dir found, for --output json
}

// dirReport is check's report of one DIR, as --output json prints it.
type dirReport struct {
	Dir      string          `json:"dir"`
	Error    string          `json:"error,omitempty"`
	Policies []*policyReport `json:"policies"`
	Markers  []markerReport  `json:"markers"`
	Held     []heldReport    `json:"held,omitempty"`
	Problems []problemReport `json:"problems"`
}

// policyReport is one policy; with --ecr, what its listing gave.
type policyReport struct {
	ID        string `json:"id"`
	Image     string `json:"image,omitempty"`
	Filter    string `json:"filter,omitempty"`
	Order     string `json:"order,omitempty"`
	DefinedIn string `json:"definedIn"`
	// Error is why the policy could not be read (--ecr: or listed).
	Error string `json:"error,omitempty"`
	// With --ecr: the tag chosen ("" when none qualifies), from Seen tags.
	Listed     bool              `json:"listed"`
	Tag        string            `json:"tag,omitempty"`
	Digest     string            `json:"digest,omitempty"`
	Seen       int               `json:"seen"`
	Excluded   int               `json:"excluded"`
	Filtered   int               `json:"filteredOut"`
	Unparsable int               `json:"notParsable"`
	Candidates []candidateReport `json:"candidates,omitempty"`
	Dropped    []droppedReport   `json:"dropped,omitempty"`
	Gates      string            `json:"gates,omitempty"`
	Gated      []droppedReport   `json:"gated,omitempty"`
	// PastGates is the choice past the gates, when gates are set.
	PastGates *string `json:"pastGates,omitempty"`
}

type candidateReport struct {
	Tag       string    `json:"tag"`
	PushedAt  time.Time `json:"pushedAt"`
	OrderedBy string    `json:"orderedBy"`
	Digest    string    `json:"digest,omitempty"`
}

type droppedReport struct {
	Tag    string `json:"tag"`
	Gate   string `json:"gate,omitempty"`
	Reason string `json:"reason"`
}

type markerReport struct {
	Location string `json:"location"`
	Policy   string `json:"policy"`
	Setter   string `json:"setter"`
	Value    string `json:"value"`
	State    string `json:"state"`
}

type heldReport struct {
	Location string `json:"location"`
	Kind     string `json:"kind"`
	Reason   string `json:"reason"`
}

type problemReport struct {
	Severity string `json:"severity"` // error or warning
	Text     string `json:"text"`
}

// dir prints what dir holds and reports whether it found errors.
func (c checker) dir(ctx context.Context, dir string) (failed bool) {
	w, region, namespace := c.w, c.region, c.namespace
	fmt.Fprintf(w, "%s\n", dir)
	tree, err := c.limits.Discover(dir, []string{"."}, namespace)
	if err != nil {
		fmt.Fprintf(w, "error: %v\n", err)
		c.rep.Error = err.Error()
		return true
	}
	defer tree.Close()
	found, problems := scanner.FindPolicies(tree, region)
	annotationFailed := scanner.FailedPolicies(found, problems)

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
		pr := &policyReport{ID: id, DefinedIn: fmt.Sprintf("%s (%s)", f.File, f.Object)}
		if f.Err != nil {
			pr.Error = f.Err.Error()
		} else {
			pr.Image, pr.Filter, pr.Order = f.Image.Name(), f.Filter(), f.Ordering()
		}
		c.rep.Policies = append(c.rep.Policies, pr)
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
		case annotationFailed[m.Policy]:
			state = "its annotation failed" // reported above, once
		case !ok:
			state = "no such policy"
			problems = append(problems, fmt.Errorf("%s: marker %s: %w%s", m.Location(), m.Policy, gitwriter.ErrUnknownPolicy, policy.DidYouMean(policy.Suggest(m.Policy, ids))))
		case f.Err != nil:
			state = f.Err.Error()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.Location(), m.Policy, setter, m.Value, state)
		c.rep.Markers = append(c.rep.Markers, markerReport{m.Location(), m.Policy, setter, m.Value, state})
	}
	tw.Flush()

	if c.lister != nil {
		chosen := map[string]scanner.Choice{}
		for i, id := range ids {
			choice, err := c.explain(ctx, id, found[id], c.rep.Policies[i])
			if err != nil {
				problems = append(problems, err)
			}
			if choice.Result.OK() {
				chosen[id] = choice
			}
		}
		c.held(dir, tree, chosen)
	}

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
		c.rep.Problems = append(c.rep.Problems, problemReport{kind, p.Error()})
	}
	return failed
}

// explain lists the policy's ECR repository and prints its candidates, the
// choice and examples of dropped tags.
func (c checker) explain(ctx context.Context, id string, f *scanner.Found, pr *policyReport) (scanner.Choice, error) {
	w := c.w
	fmt.Fprintln(w)
	if f.Err != nil {
		fmt.Fprintf(w, "%s: not resolved: %v\n", id, f.Err)
		return scanner.Choice{}, nil
	}
	images, err := c.lister.List(ctx, f.Image)
	if err != nil {
		fmt.Fprintf(w, "%s: listing ECR failed\n", id)
		pr.Error = err.Error()
		return scanner.Choice{}, fmt.Errorf("policy %s: %w", id, err)
	}
	e := f.Explain(images, c.candidates)
	pr.Listed, pr.Seen, pr.Excluded, pr.Filtered, pr.Unparsable = true, e.Seen, e.Excluded, e.Filtered, e.Unparsable
	if e.OK() {
		pr.Tag, pr.Digest = e.Tag, e.Digest
	}
	for _, cand := range e.Candidates {
		pr.Candidates = append(pr.Candidates, candidateReport{cand.Tag, cand.PushedAt.UTC(), orderedBy(f.Policy, cand), cand.Digest})
	}
	for _, d := range e.Dropped {
		pr.Dropped = append(pr.Dropped, droppedReport{Tag: d.Tag, Reason: d.Reason})
	}
	counts := fmt.Sprintf("of %d tags: %d excluded, %d filtered out, %d not parsable", e.Seen, e.Excluded, e.Filtered, e.Unparsable)
	if !e.OK() {
		fmt.Fprintf(w, "%s: no tag qualifies (%s)\n", id, counts)
	} else {
		fmt.Fprintf(w, "%s: %s (%s)\n", id, e.Tag, counts)
	}
	if len(e.Candidates) > 0 {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  CANDIDATE (* CHOSEN)\tPUSHED\tORDERED BY\tDIGEST\n")
		for i, cand := range e.Candidates {
			mark := " "
			if i == 0 {
				mark = "*"
			}
			fmt.Fprintf(tw, "%s %s\t%s\t%s\t%s\n", mark, cand.Tag, cand.PushedAt.UTC().Format(time.RFC3339), orderedBy(f.Policy, cand), shortDigest(cand.Digest))
		}
		tw.Flush()
	}
	for _, d := range e.Dropped {
		fmt.Fprintf(w, "  dropped %s: %s\n", d.Tag, d.Reason)
	}
	res := f.Select(images)
	set, errs := gate.For(c.gates, "gates", f.Policy)
	var gateErr error
	for _, err := range errs {
		gateErr = errors.Join(gateErr, fmt.Errorf("%s: %s: %w", f.File, f.Object, err))
	}
	if !set.Empty() && res.OK() {
		ch := gate.Choose(ctx, c.gateChecker, f.Policy, images, res, set)
		fmt.Fprintf(w, "  gates: %s\n", set)
		pr.Gates = set.String()
		for _, g := range ch.Gated {
			fmt.Fprintf(w, "  gated %s (%s): %s\n", g.Tag, g.Gate, g.Reason)
			pr.Gated = append(pr.Gated, droppedReport{Tag: g.Tag, Gate: g.Gate, Reason: g.Reason})
		}
		past := ""
		if res = ch.Result; res.OK() {
			fmt.Fprintf(w, "  past the gates: %s (passed %s)\n", res.Tag, strings.Join(ch.Passed, "; "))
			past = res.Tag
		} else {
			fmt.Fprintf(w, "  past the gates: nothing\n")
		}
		pr.PastGates = &past
	}
	return scanner.Choice{Policy: f.Policy, Result: res, Images: images}, gateErr
}

// held prints the markers a cycle would keep as they are, and why; the
// rules that need history apply when dir is inside a git repository.
func (c checker) held(dir string, tree *gitwriter.Tree, chosen map[string]scanner.Choice) {
	co, err := gitwriter.OpenLocal(dir)
	if err != nil {
		co = nil
	}
	held := scanner.Holds(co, tree, chosen, c.butlerEmail, nil)
	if len(held) == 0 {
		return
	}
	fmt.Fprintln(c.w)
	for _, m := range tree.Markers {
		if h, ok := held[m.Location()]; ok {
			fmt.Fprintf(c.w, "held %s (%s): %s\n", m.Location(), h.Kind, h.Reason)
			c.rep.Held = append(c.rep.Held, heldReport{m.Location(), h.Kind, h.Reason})
		}
	}
}

// orderedBy is what the policy compared for a candidate.
func orderedBy(p *policy.Policy, c policy.Candidate) string {
	if p.Order == policy.Newest {
		return "push time"
	}
	return c.Value
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}
