package testpeers

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// SkipVar, set to 1, skips the integration tests where moto is missing;
// otherwise (and always with CI=true) they fail there: a skipped package
// prints "ok" like a passing one.
const SkipVar = "IMAGEBUTLER_SKIP_INTEGRATION"

// CheckMoto is the start of an integration package's TestMain (pkg names
// it in messages): skip is "" when moto is there; otherwise ok says the
// package may run with its tests skipped for the reason skip, or must fail
// (the message is printed).
func CheckMoto(pkg string) (skip string, ok bool) {
	err := MotoAvailable()
	if err == nil {
		return "", true
	}
	if os.Getenv("CI") == "true" || os.Getenv(SkipVar) != "1" {
		fmt.Fprintf(os.Stderr, "%s: %v\nInstall moto (pip install 'moto[server]' where PyPI is reachable), or set %s=1 to skip these tests.\n", pkg, err, SkipVar)
		return "", false
	}
	skip = err.Error() + " (" + SkipVar + "=1)"
	fmt.Fprintln(os.Stderr, pkg+": skipped:", skip)
	return skip, true
}

// IsolateAWS sets the environment so that the SDK's default chain finds
// moto's test credentials and nothing of the developer's.
func IsolateAWS() {
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "",
		"AWS_REGION": SeedRegion, "AWS_PROFILE": "", "AWS_CONFIG_FILE": "/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true",
	} {
		if v == "" {
			os.Unsetenv(k)
		} else {
			os.Setenv(k, v)
		}
	}
}

// BuildCommand builds the imagebutler command (the package at cmdDir) into
// a temporary folder, which cleanup removes.
func BuildCommand(cmdDir string) (binary string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "imagebutler-bin-*")
	if err != nil {
		return "", nil, err
	}
	binary = filepath.Join(dir, "imagebutler")
	if out, err := exec.Command("go", "build", "-o", binary, cmdDir).CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("building imagebutler: %v\n%s", err, out)
	}
	return binary, func() { os.RemoveAll(dir) }, nil
}
