package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/scanner"
)

// With listenMetrics, /metrics and /status are served there alone; the
// probes stay on listen.
func TestHandlersSplit(t *testing.T) {
	s := scanner.New(&config.Config{}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	reg := prometheus.NewRegistry()
	get := func(h http.Handler, path string) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Code
	}
	one, none := handlers(s, nil, reg, false, nil, nil, nil)
	if none != nil {
		t.Error("a data handler without listenMetrics")
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 503, "/metrics": 200, "/status": 200, "/": 200, "/nothing": 404} {
		if got := get(one, path); got != want {
			t.Errorf("one address: %s = %d, want %d", path, got, want)
		}
	}
	probes, data := handlers(s, nil, reg, true, nil, nil, nil)
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 503, "/metrics": 404, "/status": 404, "/": 404} {
		if got := get(probes, path); got != want {
			t.Errorf("listen: %s = %d, want %d", path, got, want)
		}
	}
	for path, want := range map[string]int{"/healthz": 404, "/metrics": 200, "/status": 200, "/": 200} {
		if got := get(data, path); got != want {
			t.Errorf("listenMetrics: %s = %d, want %d", path, got, want)
		}
	}
}
