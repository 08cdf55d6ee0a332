package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// customRepo is one entry of app.lilly.com/flux.v2.repos (a Flux ImageRepository).
type customRepo struct {
	Name            string   `json:"name"`
	Image           string   `json:"image"`
	InjectCreatedAt flexBool `json:"injectCreatedAt"`
	Provider        string   `json:"provider"`
	Policies        []string `json:"policies"`
	ExclusionList   []string `json:"exclusionList"`
}

// customPolicy is one entry of app.lilly.com/flux.v2.policies (a Flux ImagePolicy).
type customPolicy struct {
	Name   string `json:"name"`
	Policy struct {
		Alphabetical *orderSpec `json:"alphabetical"`
		Numerical    *orderSpec `json:"numerical"`
		Semver       *struct {
			Range string `json:"range"`
		} `json:"semver"`
		Newest *struct{} `json:"newest"`
	} `json:"policy"`
	FilterTags *struct {
		Pattern string `json:"pattern"`
		Extract string `json:"extract"`
	} `json:"filterTags"`
	DigestReflectionPolicy DigestReflection `json:"digestReflectionPolicy"`
}

type orderSpec struct {
	Order string `json:"order"`
}

var (
	repoKeys   = keys{"name": nil, "image": nil, "injectCreatedAt": nil, "provider": nil, "policies": nil, "exclusionList": nil}
	policyKeys = keys{"name": nil, "policy": keys{
		"alphabetical": keys{"order": nil}, "numerical": keys{"order": nil},
		"semver": keys{"range": nil}, "newest": keys{},
	}, "filterTags": keys{"pattern": nil, "extract": nil}, "digestReflectionPolicy": nil}
)

// flexBool reads true, false, "true" or "false".
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	switch strings.ToLower(string(data)) {
	case "true", `"true"`:
		*b = true
	case "false", `"false"`, "null", `""`:
		*b = false
	default:
		return fmt.Errorf("injectCreatedAt must be true or false, not %s", data)
	}
	return nil
}

// parseCustom reads the two custom annotations of one object together.
func parseCustom(reposText, policiesText string, hasRepos, hasPolicies bool, namespace string) ([]*Policy, []error) {
	var (
		errs   []error
		repos  []customRepo
		defs   []customPolicy
		failed = map[string]bool{} // policy names that must not be emitted
	)
	repoErr := func(err error) {
		errs = append(errs, &AnnotationError{Key: CustomReposKey, Value: reposText, Err: err})
	}
	policyErr := func(err error, warning bool) {
		errs = append(errs, &AnnotationError{Key: CustomPolicyKey, Value: policiesText, Err: err, Warning: warning})
	}

	if hasRepos {
		unknown, err := decodeLenient(reposText, &repos, repoKeys)
		if err != nil {
			repoErr(err)
			repos, hasRepos = nil, false
		}
		for _, u := range unknown {
			errs = append(errs, &AnnotationError{Key: CustomReposKey, Value: reposText, Warning: true, Err: fmt.Errorf("unknown field %s; ignored", strings.TrimPrefix(u, "."))})
		}
	}
	if hasPolicies {
		unknown, err := decodeLenient(policiesText, &defs, policyKeys)
		if err != nil {
			policyErr(err, false)
			return nil, errs
		}
		for _, u := range unknown {
			policyErr(fmt.Errorf("unknown field %s; ignored", strings.TrimPrefix(u, ".")), true)
		}
	}

	if !hasRepos && len(errs) > 0 && reposText != "" {
		return nil, errs // the repos did not decode: nothing can be bound
	}

	// Definitions by name; two different definitions of one name fail it.
	byName := map[string]*customPolicy{}
	for i := range defs {
		d := &defs[i]
		if err := checkPolicyName(d.Name); err != nil {
			policyErr(fmt.Errorf("policies[%d]: %w", i, err), false)
			continue
		}
		if prev, dup := byName[d.Name]; dup {
			a, _ := json.Marshal(prev)
			b, _ := json.Marshal(d)
			if string(a) != string(b) {
				policyErr(fmt.Errorf("policy %q is defined twice, differently", d.Name), false)
				failed[d.Name] = true
			}
			continue
		}
		byName[d.Name] = d
	}

	// Bind each policy to the one repo that lists it.
	boundTo := map[string]int{}
	for i, r := range repos {
		for _, name := range r.Policies {
			if prev, dup := boundTo[name]; dup && prev != i {
				repoErr(fmt.Errorf("policy %q is listed by repos %q and %q; a policy belongs to one repo", name, repos[prev].Name, r.Name))
				failed[name] = true
				continue
			}
			boundTo[name] = i
			if _, ok := byName[name]; !ok && !failed[name] {
				repoErr(fmt.Errorf("repo %q lists policy %q, which %s does not define", r.Name, name, CustomPolicyKey))
			}
		}
	}

	var policies []*Policy
	badRepo := map[int]bool{}
	for i, r := range repos {
		if err := checkCustomRepo(r); err != nil {
			repoErr(fmt.Errorf("repo %q: %w", r.Name, err))
			badRepo[i] = true
		}
	}
	for i := range defs {
		d := &defs[i]
		if byName[d.Name] != d || failed[d.Name] {
			continue
		}
		ri, bound := boundTo[d.Name]
		if !bound {
			policyErr(fmt.Errorf("policy %q is defined but no repo in %s lists it", d.Name, CustomReposKey), true)
			continue
		}
		if badRepo[ri] {
			continue
		}
		p, err := customToPolicy(d, repos[ri], namespace)
		if err != nil {
			policyErr(fmt.Errorf("policy %q: %w", d.Name, err), false)
			continue
		}
		policies = append(policies, p)
	}
	return policies, errs
}

func checkCustomRepo(r customRepo) error {
	if r.Name == "" {
		return errors.New("name must not be empty")
	}
	if _, err := ParseImageRef(r.Image); err != nil {
		return err
	}
	if p := strings.ToLower(r.Provider); p != "" && p != "aws" {
		return fmt.Errorf("provider %q is not supported (only aws, or leave it out)", r.Provider)
	}
	for _, ex := range r.ExclusionList {
		if _, err := regexp.Compile(ex); err != nil {
			return fmt.Errorf("invalid exclusionList pattern %q: %w", ex, err)
		}
	}
	return nil
}

func customToPolicy(d *customPolicy, r customRepo, namespace string) (*Policy, error) {
	img, _ := ParseImageRef(r.Image) // checked by checkCustomRepo
	p := &Policy{
		ID:              namespace + ":" + d.Name,
		Namespace:       namespace,
		Name:            d.Name,
		Image:           img,
		InjectCreatedAt: bool(r.InjectCreatedAt),
		Exclusions:      r.ExclusionList,
		Key:             CustomPolicyKey,
	}
	chosen := 0
	spec := d.Policy
	for _, o := range []struct {
		order Order
		spec  *orderSpec
	}{{Alphabetical, spec.Alphabetical}, {Numerical, spec.Numerical}} {
		if o.spec == nil {
			continue
		}
		chosen++
		desc, err := parseOrder(o.spec.Order)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.order, err)
		}
		p.Order, p.Desc = o.order, desc
	}
	if spec.Semver != nil {
		chosen++
		p.Order, p.Range = Semver, spec.Semver.Range
		if strings.TrimSpace(p.Range) == "" {
			return nil, errors.New("semver: range must not be empty")
		}
	}
	if spec.Newest != nil {
		chosen++
		p.Order = Newest
	}
	switch chosen {
	case 0:
		return nil, errors.New("policy must be one of alphabetical, numerical, semver or newest")
	case 1:
	default:
		return nil, errors.New("policy must be exactly one of alphabetical, numerical, semver or newest")
	}
	switch d.DigestReflectionPolicy {
	case "", ReflectNever, ReflectIfNotPresent, ReflectAlways:
		p.DigestReflection = d.DigestReflectionPolicy
	default:
		return nil, fmt.Errorf("digestReflectionPolicy %q must be Never, IfNotPresent or Always", d.DigestReflectionPolicy)
	}
	if d.FilterTags != nil {
		p.Pattern, p.Extract = d.FilterTags.Pattern, d.FilterTags.Extract
		if p.Pattern == "" && p.Extract != "" {
			return nil, fmt.Errorf("filterTags.extract %q needs filterTags.pattern", p.Extract)
		}
	}
	if err := p.compile(); err != nil {
		return nil, err
	}
	return p, nil
}

func parseOrder(s string) (desc bool, err error) {
	switch s {
	case "", "asc":
		return false, nil
	case "desc":
		return true, nil
	}
	return false, fmt.Errorf("order %q must be asc or desc", s)
}
