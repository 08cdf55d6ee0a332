package policy

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
)

// Annotation keys read by Parse.
const (
	AutomatedKey    = "app.lilly.com/flux.automated"
	SimplePrefix    = "app.lilly.com/flux.simple."
	CustomReposKey  = "app.lilly.com/flux.v2.repos"
	CustomPolicyKey = "app.lilly.com/flux.v2.policies"
	// HoldPrefix + a policy name, on the object that defines the policy,
	// stops every update of that policy's markers; the value is the reason.
	HoldPrefix = "app.lilly.com/flux.hold."
	// ArtifactPrefix + a policy name, on the object that defines the
	// policy, says what the policy picks among: "image" (the default:
	// container images) or "chart" (Helm charts stored in the same ECR).
	ArtifactPrefix = "app.lilly.com/flux.artifact."
	// GatePrefix + a policy name, on the object that defines the policy,
	// tightens the gates the config sets for its candidates (ParseGate).
	GatePrefix = "app.lilly.com/flux.gate."
	keyPrefix  = "app.lilly.com/flux."
	// Domain is the prefix of every annotation key the butler reads.
	Domain = "app.lilly.com/"
)

// DefaultExclusion is the exclusion list used when none is given: it drops
// signature, attestation and SBOM tags before any filter.
const DefaultExclusion = `^.*\.(sig|att|sbom)$`

// Order says how the candidates of a policy are ranked.
type Order string

// Orders a policy can use.
const (
	Newest       Order = "newest"       // most recent imagePushedAt
	Alphabetical Order = "alphabetical" // byte-wise; asc picks the greatest
	Numerical    Order = "numerical"    // exact decimal; asc picks the greatest
	Semver       Order = "semver"       // highest version within Range
)

// Policy is one image policy: which ECR repository to list, which tags to
// consider, and how to pick one.
type Policy struct {
	ID        string // "<namespace>:<name>", as markers name it
	Namespace string
	Name      string
	Image     ImageRef
	Order     Order
	// Desc reverses alphabetical and numerical orders: the smallest value wins.
	Desc bool
	// Range is the semver constraint of a Semver order.
	Range string
	// Pattern is the RE2 filter (a custom policy's filterTags.pattern or a
	// simple regexp:); empty matches every tag.
	Pattern string
	// Glob is the glob filter of a simple annotation; empty when not a glob.
	Glob string
	// Extract expands the pattern's groups into the value that is ordered.
	Extract string
	// InjectCreatedAt offers each tag's push time to Extract as $createdAt.
	InjectCreatedAt bool
	// Exclusions are the RE2 patterns whose tags are dropped first.
	Exclusions []string
	// Key is the annotation that defined the policy.
	Key string
	// Hold, when not empty, is the reason given by the policy's hold
	// annotation: none of its markers is updated while it is there.
	Hold string
	// Gate, when not nil, is what the policy's gate annotation asks of its
	// candidates beyond the config's gates.
	Gate *Gate
	// DigestReflection says whether a full "<ns>:<policy>" marker also pins
	// the digest (<image>:<tag>@<digest>), as Flux's digestReflectionPolicy.
	DigestReflection DigestReflection

	exclude   []*regexp.Regexp
	defaultEx bool // exclude is DefaultExclusion alone
	glob      *Glob
	re        *regexp.Regexp
	reLit     literalRE // re as a literal test, when hasLit
	hasLit    bool
	lin       linearRE // re matched in one pass, when linOK
	linOK     bool
	// newestLit is the whole policy as one literal test, when it is a
	// newest-pushed pick by a literal glob or regexp (literal) under the
	// default exclusion: chooseRange then runs a loop of its own.
	newestLit   literalRE
	newestLitOK bool
	extract     extractor
	constraint  *semver.Constraints
	// rangeTakesPre is false when no comparator of Range has a prerelease:
	// Masterminds then rejects every prerelease version, and Check need not run.
	rangeTakesPre bool
	// cuts split versions into runs the range judges alike, when cutsOK.
	cuts   rangeCuts
	cutsOK bool
}

// Filter describes the tag filter for people: "glob:qa-sha-.*",
// "regexp:^v1" or "pattern ^dev-(?P<ts>\d+)$ extract $ts".
func (p *Policy) Filter() string {
	switch {
	case p.Glob != "":
		return "glob:" + p.Glob
	case p.Pattern != "" && p.Extract != "":
		return "pattern " + p.Pattern + " extract " + p.Extract
	case p.Pattern != "":
		return "regexp:" + p.Pattern
	case p.Order == Semver && p.Key != CustomPolicyKey:
		return "semver:" + p.Range
	}
	return "all tags"
}

// Ordering describes the order for people: "newest", "numerical desc", "semver >=1.0.0".
func (p *Policy) Ordering() string {
	switch p.Order {
	case Alphabetical, Numerical:
		if p.Desc {
			return string(p.Order) + " desc"
		}
		return string(p.Order) + " asc"
	case Semver:
		return "semver " + p.Range
	}
	return string(p.Order)
}

// DigestReflection is Flux's digestReflectionPolicy of an ImagePolicy.
type DigestReflection string

// The digest reflection policies.
const (
	ReflectNever DigestReflection = "Never" // the default: <image>:<tag>
	// ReflectIfNotPresent pins the digest of a tag once: a value already at
	// the chosen tag keeps the digest it has.
	ReflectIfNotPresent DigestReflection = "IfNotPresent"
	// ReflectAlways keeps the digest in step with the tag's current image.
	ReflectAlways DigestReflection = "Always"
)

// Same reports whether p and q select the same way from the same repository,
// so that two definitions of one policy id do not conflict.
func (p *Policy) Same(q *Policy) bool {
	return p.ID == q.ID && p.Image == q.Image && p.Fingerprint() == q.Fingerprint() && p.DigestReflection == q.DigestReflection
}

// Fingerprint is everything that makes a tag qualify and rank, as a string:
// policies with equal fingerprints over one ECR repository choose alike and
// may share a Memo.
func (p *Policy) Fingerprint() string {
	return fmt.Sprintf("%s|%t|%s|%q|%q|%q|%t|%q", p.Order, p.Desc, p.Range, p.Pattern, p.Glob, p.Extract, p.InjectCreatedAt, strings.Join(p.Exclusions, "\x00"))
}

// compile builds the matchers from the exported fields.
func (p *Policy) compile() error {
	if p.Order == "" {
		p.Order = Newest
	}
	if len(p.Exclusions) == 0 {
		p.Exclusions = []string{DefaultExclusion}
	}
	p.exclude = p.exclude[:0]
	for _, ex := range p.Exclusions {
		re, err := regexp.Compile(ex)
		if err != nil {
			return fmt.Errorf("invalid exclusion pattern %q: %w", ex, err)
		}
		p.exclude = append(p.exclude, re)
	}
	p.defaultEx = len(p.Exclusions) == 1 && p.Exclusions[0] == DefaultExclusion
	if p.Glob != "" {
		p.glob = CompileGlob(p.Glob)
	}
	if p.Pattern != "" {
		re, err := regexp.Compile(p.Pattern)
		if err != nil {
			return fmt.Errorf("invalid regexp %q: %w", p.Pattern, err)
		}
		p.re = re
		p.reLit, p.hasLit = literalOf(p.Pattern)
		p.lin, p.linOK = linearOf(p.Pattern)
	}
	if p.Extract != "" {
		if p.re == nil {
			return fmt.Errorf("extract %q needs a pattern", p.Extract)
		}
		x, err := compileExtract(p.re, p.Extract, p.InjectCreatedAt)
		if err != nil {
			return err
		}
		p.extract = x
	}
	p.newestLit, p.newestLitOK = literalRE{}, false
	if p.Order == Newest && p.defaultEx && p.Extract == "" {
		switch {
		case p.glob != nil:
			p.newestLit, p.newestLitOK = p.glob.literal()
		case p.re != nil:
			p.newestLit, p.newestLitOK = p.reLit, p.hasLit
		}
	}
	if p.Order == Semver {
		c, err := semver.NewConstraint(p.Range)
		if err != nil {
			return fmt.Errorf("invalid semver range %q: %w", p.Range, err)
		}
		p.constraint = c
		p.rangeTakesPre = strings.Contains(p.Range, "-")
		p.cuts, p.cutsOK = cutsOf(p.Range)
	}
	return nil
}

// Result is the outcome of Select, explaining itself.
type Result struct {
	Tag      string // chosen tag; empty when nothing qualified
	Digest   string
	PushedAt time.Time
	// Value is what was ordered: the extracted value, or the tag.
	Value string

	Seen       int // tags listed
	Excluded   int // dropped by the exclusion list
	Filtered   int // dropped by the filter (or outside the semver range)
	Unparsable int // matched, but not a number or version the order understands
}

// OK reports whether a tag was chosen.
func (r Result) OK() bool { return r.Tag != "" }
