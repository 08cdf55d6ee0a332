package docs

import (
	"bufio"
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// readmeBlock returns the first ```sh block after the line heading, in the
// project's README.md or a page of docs/, so the test runs what a person
// copies.
func readmeBlock(t *testing.T, heading string) string {
	t.Helper()
	pages, _ := filepath.Glob("../../docs/*.md")
	var after string
	ok := false
	for _, page := range append([]string{"../../README.md"}, pages...) {
		text, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		if _, after, ok = strings.Cut(string(text), "\n"+heading+"\n"); ok {
			break
		}
	}
	if !ok {
		t.Fatalf("neither README.md nor docs/ has the heading %q", heading)
	}
	_, block, ok := strings.Cut(after, "\n```sh\n")
	if !ok {
		t.Fatalf("README.md: no sh block under %q", heading)
	}
	block, _, ok = strings.Cut(block, "\n```\n")
	if !ok {
		t.Fatalf("README.md: the sh block under %q does not end", heading)
	}
	return block + "\n"
}

var (
	repoCopyOnce sync.Once
	repoCopyDir  string // removed by TestMain
	repoCopyErr  error
)

// copyRepo copies the repository's files (not .git, not bin/) to a folder
// of their own, so that the README's commands run as in a fresh clone and
// write nothing into this one. The README tests share one copy: the go
// command then compiles the project's packages in it once (its build cache
// keys them by folder), not once per test.
func copyRepo(t *testing.T) string {
	t.Helper()
	repoCopyOnce.Do(func() {
		if repoCopyDir, repoCopyErr = os.MkdirTemp("", "imagebutler-readme-*"); repoCopyErr == nil {
			repoCopyErr = copyTree(filepath.Join(repoCopyDir, "imagebutler"))
		}
	})
	if repoCopyErr != nil {
		t.Fatal(repoCopyErr)
	}
	return filepath.Join(repoCopyDir, "imagebutler")
}

// copyTree copies the repository's files (not .git, not bin/) to dst.
func copyTree(dst string) error {
	return filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("../..", path)
		if d.IsDir() && (rel == ".git" || rel == "bin") {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode().Perm())
	})
}

// runScript runs script with bash -eu -o pipefail in dir, in a process
// group of its own that is killed when it ends (moto started with & goes
// with it), with no AWS setting of this process's.
func runScript(t *testing.T, dir, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-eu", "-o", "pipefail", "-c", script)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if err != nil {
		t.Fatalf("the README's commands failed: %v\n--- script\n%s--- output\n%s", err, script, out.String())
	}
	return out.String()
}

// TestReadmeRunLocallyWithMoto runs docs/running-locally.md "With moto" as
// written, in a copy of the repository.
func TestReadmeRunLocallyWithMoto(t *testing.T) {
	needPeers(t)
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("the README's moto steps need the aws CLI")
	}
	out := runScript(t, copyRepo(t), readmeBlock(t, "### With moto (no AWS account, no token)"))
	for _, want := range []string{
		"moto answers on port ",
		"pushed 283234040926/lrl_falcon_bartender:qa-sha-1a2b3c4 (region us-east-2, http://127.0.0.1:",
		"apps.git@main: 1 change(s), pushed ",
		"Light Account Butler: Update falcon-qa:my-policy-bartender to qa-sha-1a2b3c4",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestReadmeTryIt runs README "Try it" as written, but for the test
// command, which is what runs this test.
func TestReadmeTryIt(t *testing.T) {
	needPeers(t)
	var script strings.Builder
	sc := bufio.NewScanner(strings.NewReader(readmeBlock(t, "## Try it")))
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), "go test ") {
			script.WriteString(sc.Text() + "\n")
		}
	}
	out := runScript(t, copyRepo(t), script.String())
	for _, want := range []string{"1 change(s), pushed ", "Author: Light Account Butler <butler@example.com>", "Update falcon-qa:my-policy-bartender to " + "qa-sha-1a2b3c4", "\nnext: see what the butler would pick"} {
		if !strings.Contains(out, want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, out)
		}
	}
}
