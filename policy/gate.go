package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Gate is what a policy's gate annotation asks of its candidates, beyond
// the gates of the config (which it may tighten, never loosen):
//
//	app.lilly.com/flux.gate.<policy>: "minAge=2h; maxSeverity=MEDIUM; scanRequired; signed"
//
// Terms are separated by ';' (or ','), in any order, each at most once:
// minAge=<duration> (Go's, such as 90m or 2h, or whole days such as 3d),
// maxSeverity=<INFORMATIONAL|LOW|MEDIUM|HIGH|CRITICAL> (no finding of that
// severity or above: MEDIUM refuses an image with a MEDIUM, HIGH or CRITICAL
// finding), scanRequired (no image without a finished scan) and signed (a
// signature the config's signature gate trusts).
type Gate struct {
	MinAge       time.Duration
	MaxSeverity  string // one of Severities, or ""
	ScanRequired bool
	Signed       bool
	// Key is the annotation that set the gate.
	Key string
}

// Severities are ECR's finding severities, least severe first.
var Severities = []string{"INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"}

// ParseGate reads a gate annotation's value.
func ParseGate(value string) (*Gate, error) {
	g := &Gate{}
	seen := map[string]bool{}
	for term := range strings.FieldsFuncSeq(value, func(r rune) bool { return r == ';' || r == ',' }) {
		term = strings.TrimSpace(term)
		if term == "" {
			continue
		}
		name, arg, hasArg := strings.Cut(term, "=")
		name, arg = strings.TrimSpace(name), strings.TrimSpace(arg)
		if seen[name] {
			return nil, fmt.Errorf("term %s given twice", name)
		}
		seen[name] = true
		switch {
		case name == "minAge" && hasArg:
			d, err := parseAge(arg)
			if err != nil {
				return nil, err
			}
			g.MinAge = d
		case name == "maxSeverity" && hasArg:
			s := strings.ToUpper(arg)
			if !slices.Contains(Severities, s) {
				return nil, fmt.Errorf("maxSeverity: %q is not one of %s", arg, strings.Join(Severities, ", "))
			}
			g.MaxSeverity = s
		case name == "scanRequired" && !hasArg:
			g.ScanRequired = true
		case name == "signed" && !hasArg:
			g.Signed = true
		default:
			return nil, fmt.Errorf("unknown term %q (known: minAge=<duration>, maxSeverity=<severity>, scanRequired, signed)", term)
		}
	}
	if !g.ScanRequired && !g.Signed && g.MinAge == 0 && g.MaxSeverity == "" {
		return nil, fmt.Errorf("no gate given (minAge=<duration>, maxSeverity=<severity>, scanRequired, signed)")
	}
	return g, nil
}

// maxAge bounds minAge: a longer one is surely a typo.
const maxAge = 90 * 24 * time.Hour

// parseAge reads a Go duration, or whole days ("3d").
func parseAge(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("minAge: %q is not a duration such as 90m, 2h or 3d", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil || d < 0 {
			return 0, fmt.Errorf("minAge: %q is not a duration such as 90m, 2h or 3d", s)
		}
	}
	if d > maxAge {
		return 0, fmt.Errorf("minAge: %s is more than 90 days", s)
	}
	return d, nil
}
