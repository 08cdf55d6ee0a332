//go:build linux || darwin

package gitwriter

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Discovery's own reads (beneath a folder's descriptor, folders opened by
// openat2 on Linux) refuse what os.Root refuses, with openat2 and without:
// no link is followed out of the working copy, a link as the file itself is
// never followed, and nothing that is not a regular file is read (a FIFO
// would block an open without O_NONBLOCK). With openat2, a folder link that
// stays inside is not followed either.
func TestReadStaysBeneathTheRoot(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret.yaml"), []byte("secret: 1\n"), 0o644)
	work := t.TempDir()
	os.MkdirAll(filepath.Join(work, "apps", "sub"), 0o755)
	os.WriteFile(filepath.Join(work, "apps", "sub", "app.yaml"), []byte("kind: A\n"), 0o644)
	for link, target := range map[string]string{
		"apps/linked.yaml": filepath.Join(outside, "secret.yaml"), // a file link out
		"apps/inner.yaml":  "sub/app.yaml",                        // a file link inside: still not followed
		"out":              outside,                               // a folder link out
		"abs":              filepath.Join(work, "apps"),           // an absolute folder link
		"in":               "apps/sub",                            // a folder link inside
	} {
		if err := os.Symlink(target, filepath.Join(work, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(work, "apps", "pipe.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(work)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	openat2 := runtime.GOOS == "linux"
	through := "kind: A\n" // through a folder link that stays inside: os.Root follows it, openat2 does not
	tests := []struct {
		name string
		want string // the bytes read, or "" for an error
	}{
		{"apps/sub/app.yaml", "kind: A\n"},
		{"in/app.yaml", through},
		{"apps/linked.yaml", ""},
		{"apps/inner.yaml", ""},
		{"out/secret.yaml", ""},
		{"abs/sub/app.yaml", ""},
		{"apps/pipe.yaml", ""},
		{"apps/sub", ""},
		{"apps/../../" + filepath.Base(outside) + "/secret.yaml", ""},
	}
	for _, plain := range []bool{false, true} {
		tests[1].want = through
		if openat2 && !plain {
			tests[1].want = ""
		}
		r := &reader{folders: folderRoots{root: root, dirs: dirs{plain: plain}}, limits: DefaultLimits.withDefaults()}
		for _, tt := range tests {
			done := make(chan struct{})
			var (
				got []byte
				err error
			)
			go func() {
				defer close(done)
				got, err = r.read(tt.name)
			}()
			select {
			case <-done:
			case <-time.After(time.Minute):
				t.Fatalf("plain %v: reading %s hangs", plain, tt.name)
			}
			switch {
			case tt.want == "" && err == nil:
				t.Errorf("plain %v: read %s = %q, want an error", plain, tt.name, got)
			case tt.want != "" && (err != nil || string(got) != tt.want):
				t.Errorf("plain %v: read %s = %q, %v; want %q", plain, tt.name, got, err, tt.want)
			}
		}
		r.close()

		w := newWalkFS(root)
		w.dirs.plain = plain
		in := "app.yaml"
		if openat2 && !plain {
			in = ""
		}
		for dir, want := range map[string]string{"in": in, "apps": "inner.yaml linked.yaml pipe.yaml sub", "out": "", "abs": ""} {
			entries, err := w.ReadDir(dir)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if got := strings.Join(names, " "); got != want || (want == "") != (err != nil) {
				t.Errorf("plain %v: ReadDir(%s) = %q, %v; want %q", plain, dir, got, err, want)
			}
		}
		w.dirs.close()
	}
}
