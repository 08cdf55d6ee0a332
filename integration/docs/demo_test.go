package docs

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
)

// TestDemoCleansUp runs the demo and ends it the ways a person does: a
// reader that goes away after the first lines (`| head`), and SIGKILL. Its
// moto server never outlives it, and its temp dir goes with a closed pipe.
func TestDemoCleansUp(t *testing.T) {
	needPeers(t)
	demo := filepath.Join(t.TempDir(), "demo")
	if out, err := exec.Command("go", "build", "-o", demo, "../demo").CombinedOutput(); err != nil {
		t.Fatalf("building the demo: %v\n%s", err, out)
	}
	for _, how := range []string{"closed pipe", "SIGKILL"} {
		t.Run(how, func(t *testing.T) {
			cmd := exec.Command(demo)
			cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			dir, pid := readDemoStart(t, bufio.NewScanner(out))
			switch how {
			case "closed pipe":
				out.Close()
			case "SIGKILL":
				cmd.Process.Kill()
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case <-exited:
			case <-time.After(3 * time.Minute):
				t.Fatal("the demo did not exit within 3m")
			}
			testpeers.WaitFor(t, "moto to exit", func() bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) })
			if how == "closed pipe" {
				if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the demo left %s behind (%v)", dir, err)
				}
			}
		})
	}
}

var (
	demoDirRE  = regexp.MustCompile(`, in (\S+) \.\.\.$`)
	demoMotoRE = regexp.MustCompile(`^moto answers at \S+ \(pid (\d+)\)$`)
)

// readDemoStart reads the demo's first lines: its temp dir and moto's pid.
func readDemoStart(t *testing.T, sc *bufio.Scanner) (dir string, pid int) {
	t.Helper()
	for sc.Scan() {
		if m := demoDirRE.FindStringSubmatch(sc.Text()); m != nil {
			dir = m[1]
		}
		if m := demoMotoRE.FindStringSubmatch(sc.Text()); m != nil {
			pid, _ = strconv.Atoi(m[1])
			break
		}
	}
	if dir == "" || pid == 0 {
		t.Fatalf("the demo did not print its temp dir and moto's pid (%v)", sc.Err())
	}
	return dir, pid
}
