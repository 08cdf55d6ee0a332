package gitwriter

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Setter is what a marker sets: the whole reference, or one part of it.
type Setter string

// Setters a marker can name after the policy id.
const (
	SetImage  Setter = ""       // <image>:<tag>
	SetTag    Setter = "tag"    // <tag>
	SetName   Setter = "name"   // <image>
	SetDigest Setter = "digest" // sha256:...
)

// Marker is one $imagepolicy comment and the value it governs.
type Marker struct {
	File   string // slash-separated path relative to the working copy root
	Line   int    // 1-based line of the value
	Policy string // policy id, "<namespace>:<name>"
	Setter Setter
	Value  string // current value
	Object ObjectRef

	start, end int   // byte span of the value as written, quotes included
	style      style // how the value is written
}

// Location is "file:line".
func (m Marker) Location() string { return fmt.Sprintf("%s:%d", m.File, m.Line) }

// ObjectRef names the Kubernetes object a marker or annotation sits in.
type ObjectRef struct {
	Kind      string
	Namespace string
	Name      string
}

// String is "Kind namespace/name", as errors and commit messages name objects.
func (o ObjectRef) String() string {
	if o.Kind == "" && o.Name == "" {
		return "document"
	}
	if o.Namespace == "" {
		return o.Kind + " " + o.Name
	}
	return o.Kind + " " + o.Namespace + "/" + o.Name
}

const markerKey = "$imagepolicy"

// parseMarker reads a YAML comment. ok is false when it is no marker; err
// is then set when the comment looks like one but is not (a warning). With
// ok true, err is set when it is a marker that cannot be used.
//
// As for Flux (kyaml strips every leading '#'), "## {...}" is a marker; a
// JSON object with a value that is not a string is not (Flux reads markers
// as string maps and ignores such comments).
func parseMarker(comment string) (policy string, setter Setter, ok bool, err error) {
	if !strings.Contains(comment, markerKey) {
		return "", "", false, nil
	}
	text := strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(comment), "#"))
	if !strings.HasPrefix(text, "{") {
		return "", "", false, nil
	}
	var fields map[string]any
	if err := json.Unmarshal([]byte(text), &fields); err != nil {
		return "", "", true, fmt.Errorf("marker %s is not a JSON object: %w", text, err)
	}
	v, found := fields[markerKey]
	if !found {
		return "", "", false, nil
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, isString := fields[k].(string); !isString {
			return "", "", false, fmt.Errorf("comment %s is not a marker: the value of %q is not a string, and Flux ignores such comments; not applied", text, k)
		}
	}
	ref := v.(string)
	parts := strings.Split(ref, ":")
	switch {
	case len(parts) == 2 && parts[0] != "" && parts[1] != "":
		return ref, SetImage, true, nil
	case len(parts) == 3 && parts[0] != "" && parts[1] != "":
		switch s := Setter(parts[2]); s {
		case SetTag, SetName, SetDigest:
			return parts[0] + ":" + parts[1], s, true, nil
		}
		return "", "", true, fmt.Errorf("marker %q: unknown field %q (want tag, name or digest)", ref, parts[2])
	}
	return "", "", true, fmt.Errorf("marker %q must be \"<namespace>:<policy>\" with an optional \":tag\", \":name\" or \":digest\"", ref)
}
