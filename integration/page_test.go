package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/imagebutler/imagebutler/integration/internal/testpeers"
)

// hostileText is repository text meant to run as markup: the page must
// show it as text.
const hostileText = `<img src=x onerror=document.title=/pwned/.source>`

// chromiumPath is Debian's chromium, which .ci/run installs.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true but chromium is not installed (.ci/run installs Debian's chromium)")
	}
	t.Skip("the status page test needs chromium: apt-get install chromium")
	return ""
}

// TestStatusPageInBrowser runs `imagebutler run` over a repository with a
// held marker (its hold's reason and the marker's value hostile text) and
// one that fails, and looks at / in headless Chromium: each state and
// reason is on the page, the hostile text is text (no element made of it,
// the title untouched), and the console stays clean. It writes screenshots
// at 1280×800 and 390×844 for a person to look at (into
// $IMAGEBUTLER_SCREENSHOTS when set).
func TestStatusPageInBrowser(t *testing.T) {
	needPeers(t)
	browser := chromiumPath(t)
	seedOnce(t, t.Context())
	deployment := strings.Replace(testpeers.SeedDeployment, "    app.lilly.com/flux.automated: \"true\"\n",
		"    app.lilly.com/flux.automated: \"true\"\n    app.lilly.com/flux.hold.my-policy-bartender: '"+hostileText+"'\n", 1)
	hostileValue := "        - name: sidecar\n          image: '" + testpeers.SeedImage + ":" + hostileText + "' # {\"$imagepolicy\": \"falcon-qa:my-policy-bartender\"}\n"
	deployment += hostileValue
	e := setupRepo(t, "page", deployment)
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfg, _ := os.ReadFile(e.config)
	cfg = []byte(strings.Replace(string(cfg), `listen: ""`, fmt.Sprintf("listen: \"127.0.0.1:%d\"\nschedule: \"@every 1h\"", port), 1))
	cfg = append(cfg, "  - {url: \"http://127.0.0.1:1/unreachable.git\", branch: main, timeout: 20s}\n"...)
	os.WriteFile(e.config, cfg, 0o644)
	startRun(t, e.config)
	waitFor(t, "the first cycle", func() bool { return get(base+"/readyz") == 200 })

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("no-first-run", true), chromedp.Flag("disable-quic", true))...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	if err := chromedp.Do(ctx); err != nil { // starts the browser (no timeout on this first call)
		t.Fatal(err)
	}
	// The console, read from the start.
	consoleCtx, stopConsole := context.WithCancel(ctx)
	messages := chromedp.Console(consoleCtx)
	var problems []string
	consoleDone := make(chan struct{})
	go func() {
		defer close(consoleDone)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.IsException() {
				problems = append(problems, m.String())
			}
		}
	}()
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	defer cancelTimeout()
	open := func(path string, w, h int64) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(w, h), chromedp.Navigate(base+path), chromedp.WaitVisible(chromedp.CSS("#count"))); err != nil {
			t.Fatal(err)
		}
	}
	count := func(selector string) int {
		t.Helper()
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", selector)))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	open("/", 1280, 800)
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	if err != nil {
		t.Fatal(err)
	}
	if title != "imagebutler status" {
		t.Errorf("title %q: the hostile text ran", title)
	}
	if n := count("main img"); n != 0 {
		t.Errorf("%d img elements on the page: repository text became markup", n)
	}
	for _, want := range []string{"2 of 2 repositories", "held by app.lilly.com/flux.hold.my-policy-bartender: " + hostileText,
		"To release: remove the annotation app.lilly.com/flux.hold.my-policy-bartender", ":" + hostileText, "unreachable.git@main", "failed"} {
		if !strings.Contains(text, want) {
			t.Errorf("the page does not show %q:\n%s", want, text)
		}
	}
	if held, failed := count(".held"), count(`section[data-outcome="failed"]`); held < 2 || failed != 1 {
		t.Errorf("%d held markers, %d failed repositories on the page; want 2 and 1", held, failed)
	}

	// The filters, by address.
	open("/?state=failed", 1280, 800)
	if n := count("section[data-repo]"); n != 1 {
		t.Errorf("?state=failed shows %d repositories, want 1", n)
	}

	dir := os.Getenv("IMAGEBUTLER_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	for _, size := range [][2]int64{{1280, 800}, {390, 844}} {
		open("/", size[0], size[1])
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, fmt.Sprintf("status-page-%dx%d.png", size[0], size[1]))
		if err := os.WriteFile(file, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s (%d bytes)", file, len(png))
	}
	stopConsole()
	<-consoleDone
	if len(problems) > 0 {
		t.Errorf("the console was not clean: %v", problems)
	}
}
