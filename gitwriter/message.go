package gitwriter

import (
	"fmt"
	"sort"
	"strings"
	"text/template"
)

// MessageData is what a commit message template is executed with.
type MessageData struct {
	Repository string   // the repository's name, without credentials
	Changes    []Change // every value changed, in file and line order
	Policies   []string // the distinct policy ids changed, sorted
	// Gates are the gates each policy's new value passed, by policy id
	// ("minAge 1h0m0s", "scan (no HIGH or CRITICAL finding)", "signature
	// by ..."); a policy without gates is absent.
	Gates map[string][]string
}

// maxSubject is the longest subject line the default message writes.
const maxSubject = 72

// Message renders the commit message for changes: tmpl when it is not nil,
// else the default, which names every policy with its old and new value and
// the file, in a subject under 72 characters and a body.
func Message(tmpl *template.Template, repository string, changes []Change) (string, error) {
	return MessageGated(tmpl, repository, changes, nil)
}

// MessageGated is Message naming, for each policy whose value passed gates,
// the gates it passed (gates, by policy id).
func MessageGated(tmpl *template.Template, repository string, changes []Change, gates map[string][]string) (string, error) {
	data := MessageData{Repository: repository, Changes: changes, Gates: gates}
	seen := map[string]bool{}
	for _, c := range changes {
		if !seen[c.Policy] {
			seen[c.Policy] = true
			data.Policies = append(data.Policies, c.Policy)
		}
	}
	sort.Strings(data.Policies)
	if tmpl != nil {
		var b strings.Builder
		if err := tmpl.Execute(&b, data); err != nil {
			return "", fmt.Errorf("executing git.commitMessage: %w", err)
		}
		return b.String(), nil
	}
	return defaultMessage(data), nil
}

func defaultMessage(d MessageData) string {
	var b strings.Builder
	subject := fmt.Sprintf("Update %d image policies", len(d.Policies))
	if len(d.Policies) == 1 {
		subject = "Update " + d.Policies[0]
		if tags := newValues(d); len(tags) == 1 {
			subject += " to " + tags[0]
		}
	}
	if len(subject) > maxSubject {
		subject = subject[:maxSubject-3] + "..."
	}
	b.WriteString(subject + "\n\n")
	named := map[string]bool{}
	for _, c := range d.Changes {
		id := c.Policy
		if c.Setter != SetImage {
			id += ":" + string(c.Setter)
		}
		fmt.Fprintf(&b, "- %s: %s -> %s\n  %s:%d (%s)\n", id, c.Old, c.New, c.File, c.Line, c.Object)
		if g := d.Gates[c.Policy]; len(g) > 0 && !named[c.Policy] {
			named[c.Policy] = true
			fmt.Fprintf(&b, "  gates passed: %s\n", strings.Join(g, "; "))
		}
	}
	return b.String()
}

// newValues lists the distinct tags the changes set, or nothing when they
// set something other than tags and references.
func newValues(d MessageData) []string {
	set := map[string]bool{}
	for _, c := range d.Changes {
		switch c.Setter {
		case SetTag:
			set[c.New] = true
		case SetImage:
			if i := strings.LastIndex(c.New, ":"); i >= 0 && !strings.Contains(c.New[i:], "/") {
				set[c.New[i+1:]] = true
			}
		}
	}
	var out []string
	for v := range set {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}
