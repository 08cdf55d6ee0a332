package scanner

import (
	"reflect"
	"strings"
	"testing"
	"text/template"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/forge"
	"github.com/imagebutler/imagebutler/gitwriter"
)

func TestPullText(t *testing.T) {
	msg := "Update ns:a to v2\n\n- ns:a: x:v1 -> x:v2\n\nImagebutler-Set: ns:a=v2\n"
	set := map[string]string{"ns:b": "1.2.3", "ns:a": "v2"}
	changes := []gitwriter.Change{{Policy: "ns:a", New: "x:v2"}, {Policy: "ns:b", New: "1.2.3"}}
	tests := []struct {
		name        string
		pr          config.PullRequest
		title, body string
	}{
		{"defaults", config.PullRequest{}, "Update ns:a to v2",
			"- ns:a: x:v1 -> x:v2\n\nImagebutler-Set: ns:a=v2\n\n<!-- imagebutler-set: ns:a=v2 ns:b=1.2.3 -->\n"},
		{"templates", config.PullRequest{
			TitleTemplate: template.Must(template.New("t").Parse("chore(images): {{len .Policies}} policies in {{.Repository}}\n")),
			BodyTemplate:  template.Must(template.New("b").Parse("{{range .Changes}}* {{.Policy}} → {{.New}}\n{{end}}")),
		}, "chore(images): 2 policies in repo@main",
			"* ns:a → x:v2\n* ns:b → 1.2.3\n\n<!-- imagebutler-set: ns:a=v2 ns:b=1.2.3 -->\n"},
	}
	// Repository text that imitates the hidden line (an object named so, in
	// the commit message) is escaped: only the butler's own line is read.
	forged := "Update ns:a to v2\n\n- ns:a in <!-- imagebutler-set: ns:a=999.0.0 -->: x:v1 -> x:v2\n"
	tests = append(tests, struct {
		name        string
		pr          config.PullRequest
		title, body string
	}{"imitation escaped", config.PullRequest{}, "Update ns:a to v2",
		"- ns:a in &lt;!-- imagebutler-set: ns:a=999.0.0 -->: x:v1 -> x:v2\n\n<!-- imagebutler-set: ns:a=v2 ns:b=1.2.3 -->\n"})
	for i, tt := range tests {
		msg := msg
		if i == len(tests)-1 {
			msg = forged
		}
		title, body, err := pullText(&tt.pr, "repo@main", changes, msg, set)
		if err != nil || title != tt.title || body != tt.body {
			t.Errorf("%s: pullText = %q, %q, %v\nwant %q, %q", tt.name, title, body, err, tt.title, tt.body)
		}
		if got := proposedSets(body); !reflect.DeepEqual(got, set) {
			t.Errorf("%s: proposedSets(body) = %v, want %v", tt.name, got, set)
		}
	}
}

// The values rejected are those of pull requests closed without merging
// since the newest merged one, the newest proposal of each policy winning.
func TestRejections(t *testing.T) {
	body := func(pairs ...string) string {
		return "text\n<!-- imagebutler-set: " + strings.Join(pairs, " ") + " -->\n"
	}
	pulls := []forge.PullRequest{ // newest first
		{Number: 12, Author: "mallory", Body: body("ns:a=999.0.0")},                                 // not the butler's
		{Number: 11, Author: "butler", Body: body("ns:e=999.0.0") + "text after the hidden line\n"}, // not in the butler's position
		{Number: 10, Author: "butler", Body: "text\n<!-- imagebutler-set: ns:e=999.0.0 --> more\n"}, // not the exact form
		{Number: 9, Author: "butler", Open: true, Body: body("ns:a=v9")},
		{Number: 8, Author: "butler", Body: body("ns:a=v8")},
		{Number: 7, Author: "butler", Body: body("ns:a=v7", "ns:b=b7")},
		{Number: 6, Author: "butler", Body: "closed, written by a person"},
		{Number: 5, Author: "butler", Merged: true, Body: body("ns:c=c5")},
		{Number: 4, Author: "butler", Body: body("ns:d=d4")},
	}
	want := map[string]rejection{"ns:a": {"v8", 8}, "ns:b": {"b7", 7}}
	mine := func(p forge.PullRequest) bool { return p.Author == "butler" }
	if got := rejections(pulls, mine); !reflect.DeepEqual(got, want) {
		t.Errorf("rejections = %v, want %v", got, want)
	}
}
