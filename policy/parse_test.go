package policy

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseSimple(t *testing.T) {
	tests := []struct {
		name   string
		value  string
		region string
		want   ImageRef
		filter string
		order  Order
	}{
		{"seed", "283234040926;lrl_light_k8s_infra_apps_catsdocs;glob:sha-.*", "us-east-2",
			ImageRef{"283234040926", "us-east-2", "lrl_light_k8s_infra_apps_catsdocs"}, "glob:sha-.*", Newest},
		{"registry host", "408787358807.dkr.ecr.eu-west-1.amazonaws.com;team/app;glob:dev-*", "us-east-2",
			ImageRef{"408787358807", "eu-west-1", "team/app"}, "glob:dev-*", Newest},
		{"spaces around separators", " 474366589702 ; lrl_x ; glob:qa-* ", "us-east-2",
			ImageRef{"474366589702", "us-east-2", "lrl_x"}, "glob:qa-*", Newest},
		{"no prefix is glob", "474366589702;lrl_x;sha-*", "us-east-2",
			ImageRef{"474366589702", "us-east-2", "lrl_x"}, "sha-*", Newest},
		{"regexp", "474366589702;lrl_x;regexp:^v[0-9]+$", "us-east-2",
			ImageRef{"474366589702", "us-east-2", "lrl_x"}, "regexp:^v[0-9]+$", Newest},
		{"semver", "474366589702;lrl_x;semver:>=1.0.0", "us-east-2",
			ImageRef{"474366589702", "us-east-2", "lrl_x"}, "semver:>=1.0.0", Semver},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := SimplePrefix + "my-policy"
			got, errs := Parse(map[string]string{AutomatedKey: "true", key: tt.value}, "falcon-qa", tt.region)
			if len(errs) > 0 || len(got) != 1 {
				t.Fatalf("Parse(%q) = %v, %v; want one policy", tt.value, got, errs)
			}
			p := got[0]
			if p.ID != "falcon-qa:my-policy" || p.Key != key || p.Filter != tt.filter || p.Order != tt.order {
				t.Errorf("Parse(%q) = id %q key %q filter %q order %q", tt.value, p.ID, p.Key, p.Filter, p.Order)
			}
			if diff := cmp.Diff(tt.want, p.Image); diff != "" {
				t.Errorf("Parse(%q) image (-want +got):\n%s", tt.value, diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name  string
		key   string
		value string
		want  string
	}{
		{"two fields", "p", "283234040926;lrl_x", `annotation app.lilly.com/flux.simple.p: value "283234040926;lrl_x" must be "<account>;<ecr-repo>;<filter>"`},
		{"short account", "p", "28323404092;lrl_x;glob:*", `annotation app.lilly.com/flux.simple.p: "28323404092" is neither a 12-digit AWS account id nor an ECR registry host`},
		{"bad repo", "p", "283234040926;LRL X;glob:*", `annotation app.lilly.com/flux.simple.p: "LRL X" is not a valid ECR repository name`},
		{"empty repo", "p", "283234040926;;glob:*", `annotation app.lilly.com/flux.simple.p: ECR repository name is empty`},
		{"unknown filter", "p", "283234040926;lrl_x;wildcard:*", `annotation app.lilly.com/flux.simple.p: unknown filter "wildcard:": use glob:, regexp: or semver:`},
		{"bad regexp", "p", "283234040926;lrl_x;regexp:(", "annotation app.lilly.com/flux.simple.p: invalid regexp \"(\": error parsing regexp: missing closing ): `(`"},
		{"bad semver", "p", "283234040926;lrl_x;semver:>=x.y", `annotation app.lilly.com/flux.simple.p: invalid semver range ">=x.y": improper constraint: ">=x.y"`},
		{"empty glob", "p", "283234040926;lrl_x;glob:", `annotation app.lilly.com/flux.simple.p: glob pattern is empty`},
		{"bad name", "My_Policy", "283234040926;lrl_x;glob:*", `annotation app.lilly.com/flux.simple.My_Policy: policy name "My_Policy" must be lowercase letters, digits, '-' and '.', starting and ending with a letter or digit`},
		{"custom not yet", "", "[]", `annotation app.lilly.com/flux.v2.repos: custom (flux.v2) annotations are not supported yet`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := SimplePrefix + tt.key
			if tt.key == "" {
				key = CustomReposKey
			}
			got, errs := Parse(map[string]string{AutomatedKey: "true", key: tt.value}, "ns", "us-east-2")
			if len(got) != 0 || len(errs) != 1 {
				t.Fatalf("Parse(%q) = %v, %v; want one error", tt.value, got, errs)
			}
			if errs[0].Error() != tt.want {
				t.Errorf("Parse(%q) error\n got %s\nwant %s", tt.value, errs[0], tt.want)
			}
			var ae *AnnotationError
			if !errors.As(errs[0], &ae) || ae.Key != key || ae.Value != tt.value {
				t.Errorf("error is not an *AnnotationError for %s", key)
			}
		})
	}
}

func TestParseNoRegion(t *testing.T) {
	_, errs := Parse(map[string]string{AutomatedKey: "true", SimplePrefix + "p": "283234040926;lrl_x;glob:*"}, "ns", "")
	want := "annotation app.lilly.com/flux.simple.p: account 283234040926 has no region: write the registry host (283234040926.dkr.ecr.<region>.amazonaws.com) or set aws.region"
	if len(errs) != 1 || errs[0].Error() != want {
		t.Errorf("Parse without region = %v, want %s", errs, want)
	}
}

func TestParseOneBadAnnotationKeepsOthers(t *testing.T) {
	got, errs := Parse(map[string]string{
		AutomatedKey:        "true",
		SimplePrefix + "a":  "283234040926;lrl_a;glob:*",
		SimplePrefix + "b":  "not;valid",
		SimplePrefix + "c":  "283234040926;lrl_c;glob:*",
		"unrelated.example": "x",
	}, "ns", "us-east-2")
	var ids []string
	for _, p := range got {
		ids = append(ids, p.ID)
	}
	if diff := cmp.Diff([]string{"ns:a", "ns:c"}, ids); diff != "" || len(errs) != 1 {
		t.Errorf("ids (-want +got):\n%s\nerrors: %v", diff, errs)
	}
}

func TestParseNotAutomated(t *testing.T) {
	for _, v := range []string{"false", "", "yes"} {
		got, errs := Parse(map[string]string{AutomatedKey: v, SimplePrefix + "p": "bad"}, "ns", "us-east-2")
		if got != nil || errs != nil {
			t.Errorf("automated=%q: Parse = %v, %v; want nothing", v, got, errs)
		}
	}
}

func TestImageRefName(t *testing.T) {
	r := ImageRef{"283234040926", "us-east-2", "lrl_falcon_bartender"}
	if got, want := r.Name(), "283234040926.dkr.ecr.us-east-2.amazonaws.com/lrl_falcon_bartender"; got != want {
		t.Errorf("Name() = %q, want %q", got, want)
	}
	if got, want := (ImageRef{"283234040926", "cn-north-1", "x"}).Host(), "283234040926.dkr.ecr.cn-north-1.amazonaws.com.cn"; got != want {
		t.Errorf("Host() = %q, want %q", got, want)
	}
}
