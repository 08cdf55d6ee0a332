package policy

import (
	"fmt"
	"strings"
)

// parseSimple reads "<account>;<ecr-repo>;<filter>".
func parseSimple(name, value, namespace, region string) (*Policy, error) {
	if err := checkPolicyName(name); err != nil {
		return nil, err
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
		Order:     Newest,
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
		p.Glob = pattern
	case "regexp", "regex":
		if pattern == "" {
			return nil, fmt.Errorf("regexp is empty")
		}
		p.Pattern = pattern
	case "semver":
		if pattern == "" {
			return nil, fmt.Errorf("semver range is empty")
		}
		p.Order, p.Range = Semver, pattern
	default:
		// Tags cannot hold ':', so a colon always ends a prefix.
		return nil, fmt.Errorf("unknown filter %q (want glob:, regexp: or semver:)", kind+":")
	}
	if err := p.compile(); err != nil {
		return nil, err
	}
	return p, nil
}

func checkPolicyName(name string) error {
	if !policyName.MatchString(name) || len(name) > 253 {
		return fmt.Errorf("policy name %q must be lowercase letters, digits, '-' and '.', starting and ending with a letter or digit", name)
	}
	return nil
}
