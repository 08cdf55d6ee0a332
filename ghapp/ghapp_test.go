package ghapp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/forge/forgetest"
)

func writeKey(t *testing.T, key *rsa.PrivateKey) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "app.pem")
	os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
	return p
}

// Against forgetest.GitHub (GitHub's documented App endpoints): the
// installation is looked up when not configured, a token is minted once
// and kept while valid, and each refusal names the App, the installation
// and what to do.
func TestInstallation(t *testing.T) {
	appKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ctx := context.Background()
	for _, tc := range []struct {
		name           string
		key            *rsa.PrivateKey
		appID, instID  int64
		repo           string
		revoked        bool
		want           string // the error; "" for a token
		minted, wantID int
	}{
		{name: "looked up", key: appKey, appID: 4242, repo: "apps", minted: 1},
		{name: "configured", key: appKey, appID: 4242, instID: 77, repo: "apps", minted: 1},
		{name: "wrong installation", key: appKey, appID: 4242, instID: 78, repo: "apps",
			want: "GitHub App 4242, installation 78: minting an installation token: HTTP 404: no such installation of the App: it was uninstalled, or installationID is wrong; reinstall the App (or fix auth.githubApp.installationID) (GitHub: Not Found)"},
		{name: "not installed on the repository", key: appKey, appID: 4242, repo: "other",
			want: "GitHub App 4242 is not installed on org/other: install it on the repository (or set auth.githubApp.installationID)"},
		{name: "another App's key", key: otherKey, appID: 4242, instID: 77, repo: "apps",
			want: "GitHub App 4242, installation 77: minting an installation token: HTTP 401: the App's JWT was refused: auth.githubApp.privateKeyFile is not this App's key, or appID is not its id (GitHub: A JSON web token could not be decoded)"},
		{name: "another App's id", key: appKey, appID: 4243, repo: "apps",
			want: "GitHub App 4243: finding its installation on org/apps: HTTP 401: the App's JWT was refused: auth.githubApp.privateKeyFile is not this App's key, or appID is not its id"},
		{name: "uninstalled", key: appKey, appID: 4242, instID: 77, repo: "apps", revoked: true,
			want: "GitHub App 4242, installation 77: minting an installation token: HTTP 404: no such installation of the App"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := &forgetest.GitHub{Owner: "org", Repo: "apps", App: &forgetest.App{ID: 4242, InstallationID: 77, Key: &appKey.PublicKey}}
			if tc.revoked {
				api.Revoke()
			}
			srv := httptest.NewServer(api)
			defer srv.Close()
			inst, err := New(config.GitHubApp{AppID: tc.appID, InstallationID: tc.instID, PrivateKeyFile: writeKey(t, tc.key)}, srv.URL+"/", "org", tc.repo, nil)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := inst.Token(ctx)
			if tc.want != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
					t.Fatalf("Token: %v\nwant %s", err, tc.want)
				}
				return
			}
			if err != nil || !api.ValidToken(tok) {
				t.Fatalf("Token = %q, %v; want a token the App minted", tok, err)
			}
			again, err := inst.Token(ctx)
			if err != nil || again != tok || len(api.Minted()) != tc.minted {
				t.Errorf("second Token = %q, %v, %d minted; want the same token kept", again, err, len(api.Minted()))
			}
		})
	}
}

func TestReadKey(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	for _, tc := range []struct{ file, want string }{
		{filepath.Join(dir, "missing.pem"), "reading auth.githubApp.privateKeyFile: open " + filepath.Join(dir, "missing.pem") + ": no such file or directory"},
		{notPEM, "auth.githubApp.privateKeyFile " + notPEM + ": not an RSA private key in PEM, as GitHub gives it"},
	} {
		if _, err := ReadKey(tc.file); err == nil || err.Error() != tc.want {
			t.Errorf("ReadKey(%s) = %v, want %s", tc.file, err, tc.want)
		}
	}
}

func TestLogin(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	api := &forgetest.GitHub{Owner: "org", Repo: "apps", App: &forgetest.App{ID: 4242, InstallationID: 77, Key: &key.PublicKey, Slug: "acme-butler"}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	inst, err := New(config.GitHubApp{AppID: 4242, PrivateKeyFile: writeKey(t, key)}, srv.URL+"/", "org", "apps", nil)
	if err != nil {
		t.Fatal(err)
	}
	if login, err := inst.Login(context.Background()); err != nil || login != "acme-butler[bot]" {
		t.Errorf("Login = %q, %v; want acme-butler[bot]", login, err)
	}
}
