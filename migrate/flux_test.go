package migrate

import "testing"

func TestRewriteTemplate(t *testing.T) {
	for _, tc := range []struct {
		flux, want string
		ok         bool
	}{
		{"Automated image update", "Automated image update", true},
		{"{{range .Changed.Changes}}{{print .OldValue}} -> {{println .NewValue}}{{end}}", "{{range .Changes}}{{print .Old}} -> {{println .New}}{{end}}", true},
		{"Automated update of {{ .AutomationObject }}", "", false},
		{"{{ range $resource, $changes := .Changed.Objects -}}x{{end}}", "", false},
		{"Update {{ .Values.env }}", "", false},
	} {
		got, ok := rewriteTemplate(tc.flux)
		if got != tc.want || ok != tc.ok {
			t.Errorf("rewriteTemplate(%q) = %q, %v; want %q, %v", tc.flux, got, ok, tc.want, tc.ok)
		}
	}
}
