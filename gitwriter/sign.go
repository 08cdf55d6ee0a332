package gitwriter

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/ProtonMail/go-crypto/openpgp"
)

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
