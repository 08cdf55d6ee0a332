package statuspage

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/imagebutler/imagebutler/events"
	"github.com/imagebutler/imagebutler/scanner"
)

const hostile = `<img src=x onerror="document.title='pwned'">`

func testStatus() scanner.Status {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	return scanner.Status{Cycles: 3, LastFinished: now, Repositories: []scanner.RepoStatus{
		{Name: "https://github.com/example/apps.git@main", Time: now, Duration: "1.2s", Outcome: scanner.OutcomeUpToDate, Head: "0123456789abcdef",
			LastPush: &scanner.PushStatus{Commit: "fedcba9876543210", Time: now.Add(-time.Hour)},
			Policies: []scanner.PolicyStatus{{ID: "shop:web", Image: "283234040926.dkr.ecr.us-east-2.amazonaws.com/web", Filter: "glob:sha-*", Order: "newest", State: scanner.PolicyResolved, Tag: "sha-2"}},
			Markers: []scanner.MarkerStatus{
				{Location: "apps/web.yaml:12", Policy: "shop:web", Setter: "image", Value: "x:" + hostile, State: scanner.MarkerHeld, HeldBy: scanner.HeldByAnnotation, Reason: "held by app.lilly.com/flux.hold.web: " + hostile},
			}},
		{Name: "https://github.com/example/infra.git@main", Time: now, Duration: "30s", Outcome: scanner.OutcomeFailed, Error: "fetching: HTTP 500 " + hostile,
			Policies: []scanner.PolicyStatus{}, Markers: []scanner.MarkerStatus{}},
	}}
}

func get(t *testing.T, query string) (string, http.Header) {
	t.Helper()
	h := Handler(testStatus, func() []events.Record {
		return []events.Record{{Time: time.Now(), Source: events.SourceWebhook, Outcome: events.OutcomeAccepted, Subject: hostile}}
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/"+query, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b), rec.Header()
}

// The page shows every repository, the held marker with its reason and
// how to release it, the failing one's error; repository text is escaped
// wherever it appears; no script or outside resource is allowed.
func TestPage(t *testing.T) {
	body, hdr := get(t, "")
	for _, want := range []string{
		"2 of 2 repositories", "https://github.com/example/apps.git@main", "https://github.com/example/infra.git@main",
		"1 held", "To release: remove the annotation app.lilly.com/flux.hold.web from the object that defines shop:web",
		"last push <b>fedcba987654</b>", "sha-2", `http-equiv="refresh" content="30"`,
		"&lt;img src=x onerror=&#34;document.title=&#39;pwned&#39;&#34;&gt;",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "<img") || strings.Contains(body, "<script") {
		t.Errorf("repository text reached the page unescaped:\n%s", body)
	}
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
}

func TestPageFilters(t *testing.T) {
	for query, want := range map[string][]string{
		"?state=held":           {"apps.git@main"},
		"?state=failed":         {"infra.git@main"},
		"?repo=INFRA":           {"infra.git@main"},
		"?repo=example&state=x": {"apps.git@main", "infra.git@main"}, // an unknown state filters nothing
		"?repo=nothing":         nil,
	} {
		body, _ := get(t, query)
		var got []string
		for _, name := range []string{"apps.git@main", "infra.git@main"} {
			if strings.Contains(body, `data-repo="https://github.com/example/`+name+`"`) {
				got = append(got, name)
			}
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: repositories %v, want %v", query, got, want)
		}
	}
}
