package policy

import "testing"

func TestImageRef(t *testing.T) {
	r := ImageRef{Account: "283234040926", Region: "us-east-2", Repository: "lrl_falcon_bartender"}
	if got, want := r.Name(), "283234040926.dkr.ecr.us-east-2.amazonaws.com/lrl_falcon_bartender"; got != want {
		t.Errorf("Name() = %q, want %q", got, want)
	}
	if got, want := r.String(), "283234040926/lrl_falcon_bartender in us-east-2"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	r.Charts = true
	if got, want := r.String(), "283234040926/lrl_falcon_bartender in us-east-2 (Helm charts)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if r.Repo().Charts || r.Repo().Repository != r.Repository {
		t.Errorf("Repo() = %+v", r.Repo())
	}
	if got, want := (ImageRef{Account: "283234040926", Region: "cn-north-1", Repository: "x"}).Host(), "283234040926.dkr.ecr.cn-north-1.amazonaws.com.cn"; got != want {
		t.Errorf("Host() = %q, want %q", got, want)
	}
}

func TestParseImageRef(t *testing.T) {
	good := map[string]ImageRef{
		"408787358807.dkr.ecr.us-east-2.amazonaws.com/flux-testing":   {Account: "408787358807", Region: "us-east-2", Repository: "flux-testing"},
		"408787358807.dkr.ecr.eu-west-1.amazonaws.com/team/app":       {Account: "408787358807", Region: "eu-west-1", Repository: "team/app"},
		"408787358807.dkr.ecr-fips.us-gov-west-1.amazonaws.com/a":     {Account: "408787358807", Region: "us-gov-west-1", Repository: "a"},
		"408787358807.dkr.ecr.cn-northwest-1.amazonaws.com.cn/team/a": {Account: "408787358807", Region: "cn-northwest-1", Repository: "team/a"},
	}
	for in, want := range good {
		got, err := ParseImageRef(in)
		if err != nil || got != want {
			t.Errorf("ParseImageRef(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "nginx", "docker.io/library/nginx", "408787358807.dkr.ecr.us-east-2.amazonaws.com/",
		"408787358807.dkr.ecr.us-east-2.amazonaws.com/a:1", "408787358807.dkr.ecr.us-east-2.amazonaws.com/a@sha256:00", "1.dkr.ecr.us-east-2.amazonaws.com/a"} {
		if got, err := ParseImageRef(bad); err == nil {
			t.Errorf("ParseImageRef(%q) = %v, want an error", bad, got)
		}
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"falcon-qa:ns-policy", "apps:web", "falcon-prod:ns-policy", "default:other"}
	tests := []struct {
		id   string
		want string
	}{
		{"default:ns-policy", "; did you mean falcon-prod:ns-policy or falcon-qa:ns-policy?"},
		{"shop:web", "; did you mean apps:web?"},
		{"apps:web", ""},
		{"default:nothing", ""},
		{"no-colon", ""},
		// A typo in the name, or the namespace: at most two edits.
		{"falcon-qa:ns-polcy", "; did you mean falcon-qa:ns-policy?"},
		{"falcon-q:ns-policy", "; did you mean falcon-prod:ns-policy or falcon-qa:ns-policy?"}, // the name elsewhere, and the typo
		{"apps:webb", "; did you mean apps:web?"},
		{"apps:website", ""},
	}
	for _, tt := range tests {
		if got := DidYouMean(Suggest(tt.id, known)); got != tt.want {
			t.Errorf("Suggest(%q) = %q, want %q", tt.id, got, tt.want)
		}
	}
}
