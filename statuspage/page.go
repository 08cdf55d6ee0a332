// Package statuspage serves the butler's status as a page for people: every
// repository with its outcome, last commit and pull request; every policy
// with its choice; the markers held, why, and how to release them; the
// recent events. It is html/template over the same data as /status (which
// stays the JSON), with no script and nothing fetched from elsewhere: it
// refreshes itself, filters by repository and state through its address,
// and everything on it (tags, annotations, errors: repository text, so
// hostile input) is escaped.
package statuspage

import (
	_ "embed"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/imagebutler/imagebutler/events"
	"github.com/imagebutler/imagebutler/scanner"
)

//go:embed page.html
var pageHTML string

var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"short": func(s string) string { return s[:min(12, len(s))] },
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"stateClass": func(s string) string { return strings.ReplaceAll(s, " ", "-") },
}).Parse(pageHTML))

// States a repository may be filtered by: its outcome, or "held" when a
// marker of it is held.
var States = []string{scanner.OutcomePushed, scanner.OutcomeUpToDate, scanner.OutcomePartial, scanner.OutcomeFailed, "held"}

// RefreshSeconds is how often the page reloads itself.
const RefreshSeconds = 30

// Handler serves the page from the scanner's status and the recent events
// (events may be nil).
func Handler(status func() scanner.Status, recent func() []events.Record) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		d := data{Status: status(), Repo: q.Get("repo"), State: q.Get("state"), States: States, Refresh: RefreshSeconds, Now: time.Now()}
		if !slices.Contains(States, d.State) {
			d.State = ""
		}
		for _, rs := range d.Status.Repositories {
			v := view{RepoStatus: rs}
			for _, m := range rs.Markers {
				if m.State == scanner.MarkerHeld {
					v.Held = append(v.Held, heldMarker{m, m.Release()})
				}
			}
			d.Total++
			switch {
			case d.Repo != "" && !strings.Contains(strings.ToLower(rs.Name), strings.ToLower(d.Repo)):
				continue
			case d.State == "held" && len(v.Held) == 0:
				continue
			case d.State != "" && d.State != "held" && rs.Outcome != d.State:
				continue
			}
			d.Repositories = append(d.Repositories, v)
		}
		if recent != nil {
			d.Events = recent()
			slices.Reverse(d.Events) // newest first
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		// Nothing from elsewhere, no script, no framing by other sites.
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		if err := page.Execute(w, d); err != nil {
			http.Error(w, "rendering the status page failed", http.StatusInternalServerError)
		}
	})
}

type data struct {
	scanner.Status
	Repositories []view // the ones the filters let through
	Total        int
	Repo, State  string
	States       []string
	Events       []events.Record
	Refresh      int
	Now          time.Time
}

type view struct {
	scanner.RepoStatus
	Held []heldMarker
}

type heldMarker struct {
	scanner.MarkerStatus
	Release string
}
