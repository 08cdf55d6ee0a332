package notify

import (
	"encoding/json"
	"fmt"
	"strings"
)

// maxListed is how many changes a Slack or Teams message lists.
const maxListed = 10

// link is the event's main link: the commit, else the pull request.
func (e Event) link() (title, url string) {
	switch {
	case e.PullRequest != nil && e.PullRequest.URL != "":
		return fmt.Sprintf("Pull request #%d", e.PullRequest.Number), e.PullRequest.URL
	case e.Commit != nil && e.Commit.URL != "":
		return "Commit " + short(e.Commit.SHA), e.Commit.URL
	}
	return "", ""
}

// facts are the event's details as label and value pairs, in order.
func (e Event) facts() [][2]string {
	var out [][2]string
	for i, c := range e.Changes {
		if i == maxListed {
			out = append(out, [2]string{"…", fmt.Sprintf("%d more change(s)", len(e.Changes)-i)})
			break
		}
		out = append(out, [2]string{c.Policy, c.From + " → " + c.To})
	}
	if h := e.Hold; h != nil {
		out = append(out, [2]string{"Marker", h.Marker}, [2]string{"Held by", h.By}, [2]string{"Reason", h.Reason})
		if h.State == "started" && h.Release != "" {
			out = append(out, [2]string{"To release", h.Release})
		}
	}
	if f := e.Failure; f != nil && f.Error != "" {
		out = append(out, [2]string{"Error", f.Error})
	}
	return out
}

// webhookBody is the generic webhook's body: the event as JSON.
func webhookBody(e Event) ([]byte, error) { return json.Marshal(e) }

// slackEscape escapes what Slack's mrkdwn reads as markup.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// slackBody is a Slack incoming-webhook message: text for notifications,
// blocks for the message (a section with the summary and link, one with
// the details, a context line).
func slackBody(e Event) ([]byte, error) {
	head := "*" + slackEscape.Replace(e.Repository) + "*\n" + slackEscape.Replace(strings.TrimPrefix(e.Summary, e.Repository+": "))
	if title, url := e.link(); url != "" {
		head += "\n<" + url + "|" + slackEscape.Replace(title) + ">"
	}
	blocks := []any{map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": clipText(head, 3000)}}}
	if facts := e.facts(); len(facts) > 0 {
		var b strings.Builder
		for _, f := range facts {
			fmt.Fprintf(&b, "• *%s*: %s\n", slackEscape.Replace(f[0]), slackEscape.Replace(f[1]))
		}
		blocks = append(blocks, map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": clipText(b.String(), 3000)}})
	}
	blocks = append(blocks, map[string]any{"type": "context", "elements": []any{
		map[string]any{"type": "mrkdwn", "text": "imagebutler · " + e.Kind + " · " + e.Time.UTC().Format("2006-01-02 15:04:05Z")},
	}})
	return json.Marshal(map[string]any{"text": clipText(e.Summary, 3000), "blocks": blocks})
}

// teamsBody is a Teams Workflows webhook message: one Adaptive Card
// (schema version 1.4) with a title, the summary, the details as facts and
// a button to the commit or pull request.
func teamsBody(e Event) ([]byte, error) {
	body := []any{
		map[string]any{"type": "TextBlock", "text": e.Repository, "weight": "Bolder", "size": "Medium", "wrap": true},
		map[string]any{"type": "TextBlock", "text": strings.TrimPrefix(e.Summary, e.Repository+": "), "wrap": true},
	}
	if facts := e.facts(); len(facts) > 0 {
		var fs []any
		for _, f := range facts {
			fs = append(fs, map[string]any{"title": f[0], "value": f[1]})
		}
		body = append(body, map[string]any{"type": "FactSet", "facts": fs})
	}
	body = append(body, map[string]any{"type": "TextBlock", "text": "imagebutler · " + e.Kind + " · " + e.Time.UTC().Format("2006-01-02 15:04:05Z"), "isSubtle": true, "size": "Small", "wrap": true})
	card := map[string]any{
		"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
		"type":    "AdaptiveCard",
		"version": "1.4",
		"body":    body,
	}
	if title, url := e.link(); url != "" {
		card["actions"] = []any{map[string]any{"type": "Action.OpenUrl", "title": title, "url": url}}
	}
	return json.Marshal(map[string]any{
		"type": "message",
		"attachments": []any{map[string]any{
			"contentType": "application/vnd.microsoft.card.adaptive",
			"contentUrl":  nil,
			"content":     card,
		}},
	})
}

// clipText cuts s to n bytes at most, on a rune boundary.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n-3], "") + "…"
}
