package policy

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// ImageRef names an ECR repository.
type ImageRef struct {
	Account    string // 12-digit AWS account id (the ECR registry id)
	Region     string // AWS region, such as us-east-2
	Repository string // ECR repository name; may contain '/'
	// Charts lists the repository's Helm charts instead of its images: an
	// ECR repository may hold both, and a policy picks among one kind.
	Charts bool
}

// Repo is r without Charts: the ECR repository itself, whichever kind of
// artifact is listed from it.
func (r ImageRef) Repo() ImageRef {
	r.Charts = false
	return r
}

// Host is the registry host, <account>.dkr.ecr.<region>.amazonaws.com.
func (r ImageRef) Host() string {
	return fmt.Sprintf("%s.dkr.ecr.%s.%s", r.Account, r.Region, dnsSuffix(r.Region))
}

// Name is the image name written to markers: <host>/<repository>.
func (r ImageRef) Name() string { return r.Host() + "/" + r.Repository }

// String names the repository for people: <account>/<repository> in
// <region>, followed by " (Helm charts)" when Charts.
func (r ImageRef) String() string {
	if r.Charts {
		return fmt.Sprintf("%s/%s in %s (Helm charts)", r.Account, r.Repository, r.Region)
	}
	return fmt.Sprintf("%s/%s in %s", r.Account, r.Repository, r.Region)
}

func dnsSuffix(region string) string {
	if strings.HasPrefix(region, "cn-") {
		return "amazonaws.com.cn"
	}
	return "amazonaws.com"
}

// Image is one image of an ECR repository, as the scanner lists it.
type Image struct {
	Tags     []string
	Digest   string // sha256:...
	PushedAt time.Time
}

var (
	accountRE  = regexp.MustCompile(`^[0-9]{12}$`)
	hostRE     = regexp.MustCompile(`^([0-9]{12})\.dkr\.ecr(?:-fips)?\.([a-z]{2}(?:-[a-z]+)+-[0-9]+)\.amazonaws\.com(?:\.cn)?$`)
	ecrRepoRE  = regexp.MustCompile(`^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$`)
	policyName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)
)

// ErrNoRegion says an annotation gives a bare account id and no default
// region is known. The scanner fails the repository for it: its markers
// cannot be kept up to date.
var ErrNoRegion = errors.New("no AWS region known")

// parseRegistry reads an account id or registry host; defaultRegion fills in
// the region of a bare account id.
func parseRegistry(s, defaultRegion string) (account, region string, err error) {
	if accountRE.MatchString(s) {
		if defaultRegion == "" {
			return "", "", fmt.Errorf("account %s: %w: write the registry host (%s.dkr.ecr.<region>.amazonaws.com), or set aws.region or AWS_REGION", s, ErrNoRegion, s)
		}
		return s, defaultRegion, nil
	}
	if m := hostRE.FindStringSubmatch(s); m != nil {
		return m[1], m[2], nil
	}
	return "", "", fmt.Errorf("%q is neither a 12-digit AWS account id nor an ECR registry host", s)
}

func checkRepository(s string) error {
	if s == "" {
		return fmt.Errorf("ECR repository name is empty")
	}
	if len(s) > 256 || !ecrRepoRE.MatchString(s) {
		return fmt.Errorf("%q is not a valid ECR repository name", s)
	}
	return nil
}

// ParseImageRef reads an ECR image reference without tag or digest:
// <account>.dkr.ecr.<region>.amazonaws.com/<repository>.
func ParseImageRef(s string) (ImageRef, error) {
	host, repo, ok := strings.Cut(s, "/")
	if !ok {
		return ImageRef{}, fmt.Errorf("image %q is not an ECR reference (<account>.dkr.ecr.<region>.amazonaws.com/<repository>)", s)
	}
	m := hostRE.FindStringSubmatch(host)
	if m == nil {
		return ImageRef{}, fmt.Errorf("image %q is not an ECR reference (<account>.dkr.ecr.<region>.amazonaws.com/<repository>)", s)
	}
	if strings.ContainsAny(repo, ":@") {
		return ImageRef{}, fmt.Errorf("image %q must not carry a tag or digest", s)
	}
	if err := checkRepository(repo); err != nil {
		return ImageRef{}, fmt.Errorf("image %q: %w", s, err)
	}
	return ImageRef{Account: m[1], Region: m[2], Repository: repo}, nil
}
