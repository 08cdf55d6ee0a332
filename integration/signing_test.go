package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
)

// TestSSHSignedCommit: with git.signing {format: ssh}, the butler's pushed
// commit carries an SSH signature that OpenSSH's own ssh-keygen -Y verify
// and git verify-commit (gpg.format=ssh) accept against an allowed-signers
// file naming the key, and refuse when the file names another key.
func TestSSHSignedCommit(t *testing.T) {
	for _, tc := range []struct {
		name, keyType, passphrase string
	}{
		{"ed25519", "ed25519", ""},
		{"rsa", "rsa", ""},                      // signed as rsa-sha2-512, as ssh-keygen does
		{"encrypted", "ecdsa", "s3cret phrase"}, // decrypted with passphraseFile
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setupRepo(t, "signed-"+tc.name, testpeers.SeedDeployment)
			key := sshKeygen(t, e.dir, "butler-"+tc.name, tc.keyType, tc.passphrase)
			other := sshKeygen(t, e.dir, "other-"+tc.name, "ed25519", "")
			signing := "  signing: {format: ssh, keyFile: " + quote(key) + "}\n"
			if tc.passphrase != "" {
				pass := filepath.Join(e.dir, "passphrase")
				os.WriteFile(pass, []byte(tc.passphrase+"\n"), 0o600)
				signing = "  signing: {format: ssh, keyFile: " + quote(key) + ", passphraseFile: " + quote(pass) + "}\n"
			}
			e.editConfig(t, "git:\n", "git:\n"+signing)
			if stdout, stderr, code := e.once(t); code != 0 || !strings.Contains(stdout, "pushed") {
				t.Fatalf("once exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			clone := e.clone(t)
			raw, err := testpeers.Git(clone, "cat-file", "commit", "HEAD") // exact bytes: gitOut trims
			if err != nil {
				t.Fatal(err)
			}
			payload, sig := splitSignature(raw)
			if !strings.HasPrefix(sig, "-----BEGIN SSH SIGNATURE-----\n") {
				t.Fatalf("the butler's commit has no SSH signature:\n%s", raw)
			}
			payloadFile, sigFile := filepath.Join(e.dir, "payload"), filepath.Join(e.dir, "payload.sig")
			os.WriteFile(payloadFile, []byte(payload), 0o644)
			os.WriteFile(sigFile, []byte(sig), 0o644)

			for _, signer := range []struct {
				pub  string
				want bool
			}{{key + ".pub", true}, {other + ".pub", false}} {
				allowed := allowedSigners(t, e.dir, butlerEmail, signer.pub)
				verify := exec.Command("ssh-keygen", "-Y", "verify", "-f", allowed, "-I", butlerEmail, "-n", "git", "-s", sigFile)
				verify.Stdin = strings.NewReader(payload)
				out, err := verify.CombinedOutput()
				if (err == nil) != signer.want {
					t.Errorf("ssh-keygen -Y verify with %s: err %v, want ok %v\n%s", filepath.Base(signer.pub), err, signer.want, out)
				}
				out2, err := exec.Command("git", "-C", clone, "-c", "gpg.format=ssh", "-c", "gpg.ssh.allowedSignersFile="+allowed,
					"verify-commit", "HEAD").CombinedOutput()
				if (err == nil) != signer.want {
					t.Errorf("git verify-commit with %s: err %v, want ok %v\n%s", filepath.Base(signer.pub), err, signer.want, out2)
				}
			}
		})
	}
}

// TestSigningKeyCheckedAtStart: a signing key that cannot be read or
// decrypted is a configuration error of check-config (exit 2), naming the
// file and the fix, before any commit is made.
func TestSigningKeyCheckedAtStart(t *testing.T) {
	dir := t.TempDir()
	encrypted := sshKeygen(t, dir, "enc", "ed25519", "pw")
	notAKey := filepath.Join(dir, "not-a-key")
	os.WriteFile(notAKey, []byte("hello\n"), 0o600)
	for _, tc := range []struct {
		name, signing, want string
	}{
		{"missing", "{format: ssh, keyFile: " + quote(filepath.Join(dir, "nope")) + "}", "reading git.signing.keyFile: open " + filepath.Join(dir, "nope") + ": no such file or directory"},
		{"not a key", "{format: ssh, keyFile: " + quote(notAKey) + "}", "reading git.signing.keyFile " + notAKey + ": not an SSH private key"},
		{"encrypted", "{format: ssh, keyFile: " + quote(encrypted) + "}", "git.signing.keyFile " + encrypted + " is encrypted: set git.signing.passphraseFile"},
		{"bad format", "{format: x509, keyFile: " + quote(encrypted) + "}", `git.signing.format: "x509" is not one of openpgp, ssh`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := filepath.Join(dir, "imagebutler.yaml")
			body := butlerConfig(filepath.Join(dir, "state"), "https://git.example.com/org/apps.git", filepath.Join(dir, "token"))
			os.WriteFile(cfg, []byte(strings.Replace(body, "git:\n", "git:\n  signing: "+tc.signing+"\n", 1)), 0o644)
			out, err := exec.Command(binary, "check-config", "--config", cfg).CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
				t.Fatalf("check-config: %v, want exit 2\n%s", err, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("check-config said\n%s\nwant it to hold %q", out, tc.want)
			}
		})
	}
}

// sshKeygen makes a key pair with OpenSSH's ssh-keygen and returns the
// private key's path (the public key is path + ".pub").
func sshKeygen(t *testing.T, dir, name, keyType, passphrase string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", keyType, "-N", passphrase, "-C", name, "-f", p).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	return p
}

// allowedSigners writes an allowed-signers file granting the key in pub
// to principal for namespace git.
func allowedSigners(t *testing.T, dir, principal, pub string) string {
	t.Helper()
	key, err := os.ReadFile(pub)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "allowed-"+filepath.Base(pub))
	os.WriteFile(p, []byte(principal+` namespaces="git" `+strings.TrimSpace(string(key))+"\n"), 0o644)
	return p
}

// splitSignature splits a raw commit object into what was signed (the
// object without its gpgsig header) and the signature.
func splitSignature(raw string) (payload, sig string) {
	var out, s strings.Builder
	in := false
	header := true
	for _, line := range strings.SplitAfter(raw, "\n") {
		switch {
		case header && strings.HasPrefix(line, "gpgsig "):
			in = true
			s.WriteString(strings.TrimPrefix(line, "gpgsig "))
		case header && in && strings.HasPrefix(line, " "):
			s.WriteString(line[1:])
		default:
			in = false
			if line == "\n" {
				header = false
			}
			out.WriteString(line)
		}
	}
	return out.String(), s.String()
}

// editConfig replaces old with new in the test's config file.
func (e *env) editConfig(t *testing.T, old, new string) {
	t.Helper()
	b, err := os.ReadFile(e.config)
	if err != nil || !strings.Contains(string(b), old) {
		t.Fatalf("config %s: %v, or it does not hold %q", e.config, err, old)
	}
	os.WriteFile(e.config, []byte(strings.Replace(string(b), old, new, 1)), 0o644)
}

func quote(s string) string { return `"` + s + `"` }
