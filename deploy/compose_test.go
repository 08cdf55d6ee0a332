package deploy

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"

	"github.com/imagebutler/imagebutler/config"
)

// loadCompose loads the LocalStack compose file as `docker compose config`
// does (compose-go, the loader docker compose uses): YAML, interpolation of
// every ${VAR...} form, and the Compose schema.
func loadCompose(t *testing.T, env map[string]string) (*types.Project, error) {
	t.Helper()
	return loader.LoadWithContext(t.Context(), types.ConfigDetails{
		WorkingDir:  "localstack",
		ConfigFiles: []types.ConfigFile{{Filename: "localstack/compose.yaml"}},
		Environment: env,
	}, func(o *loader.Options) { o.SetProjectName("imagebutler", true) })
}

func TestComposeFile(t *testing.T) {
	raw, err := os.ReadFile("localstack/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("compose.yaml is not YAML: %v", err)
	}
	// Every interpolation has a form Compose knows.
	for _, m := range regexp.MustCompile(`\$\{[^}]*\}`).FindAll(raw, -1) {
		if !regexp.MustCompile(`^\$\{[A-Za-z_][A-Za-z0-9_]*(?:(?::?[-?+]).*)?\}$`).Match(m) {
			t.Errorf("compose.yaml: %s is not a Compose interpolation", m)
		}
	}

	// Without the token, Compose refuses with the file's own message.
	if _, err := loadCompose(t, map[string]string{}); err == nil || !strings.Contains(err.Error(), "set LOCALSTACK_AUTH_TOKEN, LocalStack needs it for ECR") {
		t.Errorf("without LOCALSTACK_AUTH_TOKEN: err = %v", err)
	}

	p, err := loadCompose(t, map[string]string{"LOCALSTACK_AUTH_TOKEN": "ls-token"})
	if err != nil {
		t.Fatalf("docker compose config would fail: %v", err)
	}
	ls, err := p.GetService("localstack")
	if err != nil {
		t.Fatal(err)
	}
	if v := ls.Environment["LOCALSTACK_AUTH_TOKEN"]; v == nil || *v != "ls-token" {
		t.Errorf("localstack's LOCALSTACK_AUTH_TOKEN = %v", v)
	}
	ib, err := p.GetService("imagebutler")
	if err != nil {
		t.Fatal(err)
	}
	if v := ib.Environment["AWS_ENDPOINT_URL"]; v == nil || *v != "http://localstack:4566" {
		t.Errorf("imagebutler's AWS_ENDPOINT_URL = %v", v)
	}

	// The config it mounts is valid, and its stateDir is a named volume,
	// which Docker creates with the owner the image gives that folder.
	cfg, err := config.Load("localstack/imagebutler.yaml")
	if err != nil {
		t.Fatalf("localstack/imagebutler.yaml: %v", err)
	}
	var state *types.ServiceVolumeConfig
	for i, v := range ib.Volumes {
		if v.Target == cfg.StateDir {
			state = &ib.Volumes[i]
		}
	}
	if state == nil || state.Type != types.VolumeTypeVolume {
		t.Fatalf("stateDir %s is not a named volume: %+v", cfg.StateDir, ib.Volumes)
	}
	dockerfile, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if want := "--chown=65532:65532 /out/state " + cfg.StateDir; !bytes.Contains(dockerfile, []byte(want)) {
		t.Errorf("the Dockerfile does not give %s to uid 65532 (want a COPY %s)", cfg.StateDir, want)
	}
}
