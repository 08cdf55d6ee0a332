package gitwriter

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/go-git/go-git/v5"
	"github.com/hiddeco/sshsig"
	"golang.org/x/crypto/ssh"

	"github.com/imagebutler/imagebutler/config"
)

// LoadSigner reads the key of s and returns the signer of the butler's
// commits: an OpenPGP signature, or an SSH signature as git makes with
// gpg.format=ssh (namespace "git", SHA-512). Both go in the commit's gpgsig
// header. A nil s signs nothing (a nil Signer).
func LoadSigner(s *config.Signing) (git.Signer, error) {
	if s == nil {
		return nil, nil
	}
	switch s.Format {
	case "", "openpgp":
		e, err := LoadSigningKey(s.KeyFile, s.PassphraseFile)
		if err != nil {
			return nil, err
		}
		return openPGPSigner{e}, nil
	case "ssh":
		return loadSSHSigner(s.KeyFile, s.PassphraseFile)
	}
	return nil, fmt.Errorf("git.signing.format %q is not one of openpgp, ssh", s.Format)
}

// openPGPSigner makes an ASCII-armored detached OpenPGP signature.
type openPGPSigner struct{ key *openpgp.Entity }

func (s openPGPSigner) Sign(message io.Reader) ([]byte, error) {
	var b bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&b, s.key, message, nil); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// sshSigner makes an armored SSH signature of namespace "git".
type sshSigner struct{ key ssh.Signer }

// SSHNamespace is the namespace of the butler's SSH signatures, git's:
// `ssh-keygen -Y verify -n git` checks them.
const SSHNamespace = "git"

func (s sshSigner) Sign(message io.Reader) ([]byte, error) {
	sig, err := sshsig.Sign(message, s.key, sshsig.HashSHA512, SSHNamespace)
	if err != nil {
		return nil, err
	}
	return sshsig.Armor(sig), nil
}

// loadSSHSigner reads an OpenSSH (or PEM) private key, decrypting it with
// the passphrase in passphraseFile when it is encrypted.
func loadSSHSigner(keyFile, passphraseFile string) (git.Signer, error) {
	data, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("reading git.signing.keyFile: %w", err)
	}
	key, err := ssh.ParsePrivateKey(data)
	var missing *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &missing) && passphraseFile == "":
		return nil, fmt.Errorf("git.signing.keyFile %s is encrypted: set git.signing.passphraseFile", keyFile)
	case errors.As(err, &missing):
		pass, rerr := os.ReadFile(passphraseFile)
		if rerr != nil {
			return nil, fmt.Errorf("reading git.signing.passphraseFile: %w", rerr)
		}
		if key, err = ssh.ParsePrivateKeyWithPassphrase(data, bytes.TrimRight(pass, "\r\n")); err != nil {
			return nil, fmt.Errorf("decrypting git.signing.keyFile %s: wrong passphrase, or %w", keyFile, err)
		}
	case err != nil:
		return nil, fmt.Errorf("reading git.signing.keyFile %s: not an SSH private key: %w", keyFile, err)
	}
	return sshSigner{key}, nil
}

// LoadSigningKey reads an ASCII-armored OpenPGP private key, decrypting it
// with the passphrase in passphraseFile when that is not empty.
func LoadSigningKey(keyFile, passphraseFile string) (*openpgp.Entity, error) {
	data, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("reading git.signingKeyFile: %w", err)
	}
	entities, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("reading git.signingKeyFile %s: %w", keyFile, err)
	}
	if len(entities) != 1 {
		return nil, fmt.Errorf("git.signingKeyFile %s holds %d keys, want one", keyFile, len(entities))
	}
	e := entities[0]
	if e.PrivateKey == nil {
		return nil, fmt.Errorf("git.signingKeyFile %s holds a public key, not a private one", keyFile)
	}
	if e.PrivateKey.Encrypted {
		if passphraseFile == "" {
			return nil, fmt.Errorf("git.signingKeyFile %s is encrypted: set git.signingKeyPassphraseFile", keyFile)
		}
		pass, err := os.ReadFile(passphraseFile)
		if err != nil {
			return nil, fmt.Errorf("reading git.signingKeyPassphraseFile: %w", err)
		}
		pass = bytes.TrimRight(pass, "\r\n")
		if err := e.PrivateKey.Decrypt(pass); err != nil {
			return nil, errors.New("decrypting git.signingKeyFile: wrong passphrase")
		}
		for _, sub := range e.Subkeys {
			if sub.PrivateKey != nil && sub.PrivateKey.Encrypted {
				if err := sub.PrivateKey.Decrypt(pass); err != nil {
					return nil, errors.New("decrypting a subkey of git.signingKeyFile: wrong passphrase")
				}
			}
		}
	}
	return e, nil
}
