package policy

import (
	"regexp"
	"time"

	"github.com/Masterminds/semver/v3"
)

// Annotation keys read by Parse.
const (
	AutomatedKey    = "app.lilly.com/flux.automated"
	SimplePrefix    = "app.lilly.com/flux.simple."
	CustomReposKey  = "app.lilly.com/flux.v2.repos"
	CustomPolicyKey = "app.lilly.com/flux.v2.policies"
)

// DefaultExclusion drops signature, attestation and SBOM tags before any filter.
var DefaultExclusion = regexp.MustCompile(`^.*\.(sig|att|sbom)$`)

// Order says how the candidates of a policy are ranked.
type Order string

// Orders a policy can use.
const (
	Newest Order = "newest" // most recent imagePushedAt
	Semver Order = "semver" // highest version within the range
)

// Policy is one image policy: which ECR repository to list, which tags to
// consider, and how to pick one.
type Policy struct {
	ID        string // "<namespace>:<name>", as markers name it
	Namespace string
	Name      string
	Image     ImageRef
	Filter    string // the filter as written, such as "glob:sha-.*"
	Order     Order
	// Key is the annotation that defined the policy.
	Key string

	exclude []*regexp.Regexp
	match   *regexp.Regexp      // tags must match; nil matches all
	semver  *semver.Constraints // for Order Semver
}

// Result is the outcome of Select, explaining itself.
type Result struct {
	Tag      string // chosen tag; empty when nothing qualified
	Digest   string
	PushedAt time.Time

	Seen       int // tags listed
	Excluded   int // dropped by the exclusion list
	Filtered   int // dropped by the filter
	Unparsable int // matched, but not a version the order understands
}

// OK reports whether a tag was chosen.
func (r Result) OK() bool { return r.Tag != "" }
