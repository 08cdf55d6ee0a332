package policy

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// AnnotationError is a problem with one annotation.
type AnnotationError struct {
	Key   string // annotation key
	Value string // annotation value
	Err   error
}

func (e *AnnotationError) Error() string {
	return fmt.Sprintf("annotation %s: %v", e.Key, e.Err)
}

func (e *AnnotationError) Unwrap() error { return e.Err }

// Automated reports whether annotations opt the object in.
func Automated(annotations map[string]string) bool {
	return annotations[AutomatedKey] == "true"
}

// Parse reads the policies of one object's annotations. namespace is the
// object's resolved namespace; region fills in bare account ids. An object
// that is not automated yields nothing. Each annotation that cannot be read
// adds an *AnnotationError and does not stop the others.
func Parse(annotations map[string]string, namespace, region string) ([]*Policy, []error) {
	if !Automated(annotations) {
		return nil, nil
	}
	keys := make([]string, 0, len(annotations))
	for k := range annotations {
		keys = append(keys, k)
	}
	sort.Strings(keys)

	var (
		policies []*Policy
		errs     []error
	)
	for _, key := range keys {
		value := annotations[key]
		switch {
		case strings.HasPrefix(key, SimplePrefix):
			p, err := parseSimple(strings.TrimPrefix(key, SimplePrefix), value, namespace, region)
			if err != nil {
				errs = append(errs, &AnnotationError{Key: key, Value: value, Err: err})
				continue
			}
			p.Key = key
			policies = append(policies, p)
		case key == CustomReposKey || key == CustomPolicyKey:
			errs = append(errs, &AnnotationError{Key: key, Value: value, Err: fmt.Errorf("custom (flux.v2) annotations are not supported yet")})
		}
	}
	return policies, errs
}

// parseSimple reads "<account>;<ecr-repo>;<filter>".
func parseSimple(name, value, namespace, region string) (*Policy, error) {
	if !policyName.MatchString(name) || len(name) > 253 {
		return nil, fmt.Errorf("policy name %q must be lowercase letters, digits, '-' and '.', starting and ending with a letter or digit", name)
	}
	parts := strings.SplitN(value, ";", 3)
	if len(parts) != 3 {
		return nil, fmt.Errorf("value %q must be \"<account>;<ecr-repo>;<filter>\"", value)
	}
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	account, reg, err := parseRegistry(parts[0], region)
	if err != nil {
		return nil, err
	}
	if err := checkRepository(parts[1]); err != nil {
		return nil, err
	}
	p := &Policy{
		ID:        namespace + ":" + name,
		Namespace: namespace,
		Name:      name,
		Image:     ImageRef{Account: account, Region: reg, Repository: parts[1]},
		Filter:    parts[2],
		Order:     Newest,
		exclude:   []*regexp.Regexp{DefaultExclusion},
	}
	kind, pattern, found := strings.Cut(parts[2], ":")
	if !found {
		kind, pattern = "glob", parts[2]
	}
	switch kind {
	case "glob":
		if pattern == "" {
			return nil, fmt.Errorf("glob pattern is empty")
		}
		p.match = CompileGlob(pattern)
	case "regexp", "regex":
		re, err := regexp.Compile(pattern)
		if err != nil {
			return nil, fmt.Errorf("invalid regexp %q: %w", pattern, err)
		}
		p.match = re
	case "semver":
		c, err := semver.NewConstraint(pattern)
		if err != nil {
			return nil, fmt.Errorf("invalid semver range %q: %w", pattern, err)
		}
		p.Order, p.semver = Semver, c
	default:
		// Tags cannot hold ':', so a colon always ends a prefix.
		return nil, fmt.Errorf("unknown filter %q: use glob:, regexp: or semver:", kind+":")
	}
	return p, nil
}
