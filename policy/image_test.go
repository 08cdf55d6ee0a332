package policy

import "testing"

func TestImageRef(t *testing.T) {
	r := ImageRef{"283234040926", "us-east-2", "lrl_falcon_bartender"}
	if got, want := r.Name(), "283234040926.dkr.ecr.us-east-2.amazonaws.com/lrl_falcon_bartender"; got != want {
		t.Errorf("Name() = %q, want %q", got, want)
	}
	if got, want := r.String(), "283234040926/lrl_falcon_bartender in us-east-2"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := (ImageRef{"283234040926", "cn-north-1", "x"}).Host(), "283234040926.dkr.ecr.cn-north-1.amazonaws.com.cn"; got != want {
		t.Errorf("Host() = %q, want %q", got, want)
	}
}

func TestParseImageRef(t *testing.T) {
	good := map[string]ImageRef{
		"408787358807.dkr.ecr.us-east-2.amazonaws.com/flux-testing":   {"408787358807", "us-east-2", "flux-testing"},
		"408787358807.dkr.ecr.eu-west-1.amazonaws.com/team/app":       {"408787358807", "eu-west-1", "team/app"},
		"408787358807.dkr.ecr-fips.us-gov-west-1.amazonaws.com/a":     {"408787358807", "us-gov-west-1", "a"},
		"408787358807.dkr.ecr.cn-northwest-1.amazonaws.com.cn/team/a": {"408787358807", "cn-northwest-1", "team/a"},
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

func TestSameName(t *testing.T) {
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
	}
	for _, tt := range tests {
		if got := DidYouMean(SameName(tt.id, known)); got != tt.want {
			t.Errorf("SameName(%q) = %q, want %q", tt.id, got, tt.want)
		}
	}
}
