package config

import (
	"reflect"
	"strings"
)

// Schema returns the JSON Schema (draft-07) of the configuration file:
// every field with its type, no unknown field anywhere. The Helm chart's
// values.schema.json holds it under config, so that `helm install` fails on
// a typo in config instead of the pod; a test keeps the two equal.
func Schema() map[string]any {
	s := schemaOf(reflect.TypeFor[Config]())
	props := s["properties"].(map[string]any)
	for _, k := range []string{"listen", "listenMetrics"} {
		props[k].(map[string]any)["pattern"] = ListenPattern
		props[k].(map[string]any)["description"] = "host:port, such as :8080; empty turns it off"
	}
	return s
}

func schemaOf(t reflect.Type) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == durationType {
		return map[string]any{"type": "string", "description": "a Go duration such as 30s or 5m"}
	}
	switch t.Kind() {
	case reflect.Struct:
		props := map[string]any{}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			props[name] = schemaOf(f.Type)
		}
		return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem())}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": schemaOf(t.Elem())}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Float64:
		return map[string]any{"type": "number"}
	}
	return map[string]any{}
}
