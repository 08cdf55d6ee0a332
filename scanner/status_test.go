package scanner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/imagebutler/imagebutler/policy"
)

const statusManifest = manifest + `        - image: example/orphan:1 # {"$imagepolicy": "shop:nobody"}
        - image: sha256:0 # {"$imagepolicy": "shop:web:digest"}
`

func TestStatusAndMetrics(t *testing.T) {
	bare := newRemote(t, map[string]string{"web.yaml": statusManifest})
	l := &fakeLister{calls: map[policy.ImageRef]int{}, images: map[string][]policy.Image{
		"shop_web": {{Tags: []string{"sha-1", "main-1"}, PushedAt: pushed(1)}, {Tags: []string{"sha-2"}, PushedAt: pushed(2)}},
		// shop_api is not there: its listing fails.
	}}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	var logs bytes.Buffer
	s := New(testConfig(t, bare), l, slog.New(slog.NewJSONHandler(&logs, nil)), WithMetrics(m))
	name := testConfig(t, bare).Repositories[0].Name()

	// Before the first cycle every per-repository series is there, at zero.
	for _, c := range []prometheus.Collector{m.lastSuccess, m.lastAttempt, m.failures, m.commits, m.pushRetries} {
		if n := testutil.CollectAndCount(c); n != 1 {
			t.Errorf("series before the first cycle = %d, want 1", n)
		}
	}
	if v := testutil.ToFloat64(m.lastSuccess.WithLabelValues(name)); v != 0 {
		t.Errorf("last success before the first cycle = %v, want 0", v)
	}

	results := s.RunOnce(context.Background())

	st := s.Status()
	if st.Cycles != 1 || len(st.Repositories) != 1 || st.LastFinished.Before(st.LastStarted) {
		t.Fatalf("status = %+v", st)
	}
	rs := st.Repositories[0]
	// web's update was pushed while api's listing failed: partial, with the commit.
	if rs.Outcome != OutcomePartial || !strings.Contains(rs.Error, "RepositoryNotFoundException") || rs.Commit == "" {
		t.Errorf("repository: outcome %q, error %q, commit %q", rs.Outcome, rs.Error, rs.Commit)
	}
	type pol struct{ ID, State, Tag string }
	var pols []pol
	for _, p := range rs.Policies {
		pols = append(pols, pol{p.ID, p.State, p.Tag})
	}
	if diff := cmp.Diff([]pol{{"shop:api", PolicyListFailed, ""}, {"shop:web", PolicyResolved, "sha-2"}}, pols); diff != "" {
		t.Errorf("policies (-want +got):\n%s", diff)
	}
	web := rs.Policies[1]
	if web.Seen != 3 || web.Filtered != 1 || web.Filter != "glob:sha-*" || web.Order != "newest" || web.DefinedIn != "web.yaml (Deployment shop/web)" || !web.PushedAt.Equal(pushed(2)) {
		t.Errorf("web policy = %+v", web)
	}
	type mark struct{ Location, Setter, State string }
	var marks []mark
	for _, m := range rs.Markers {
		marks = append(marks, mark{m.Location, m.Setter, m.State})
	}
	want := []mark{
		{"web.yaml:14", "image", MarkerUpdated},
		{"web.yaml:15", "image", MarkerUnresolved},
		{"web.yaml:16", "image", MarkerNoPolicy},
		{"web.yaml:17", "digest", MarkerUnresolved}, // no digest known
	}
	if diff := cmp.Diff(want, marks); diff != "" {
		t.Errorf("markers (-want +got):\n%s", diff)
	}
	if _, err := json.Marshal(st); err != nil {
		t.Errorf("status does not encode: %v", err)
	}

	// The metric names operators alert on (vectors without series yet, such
	// as ECR requests through the fake lister, are not gathered).
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
	}
	sort.Strings(names)
	wantNames := []string{
		"imagebutler_candidates_gated",
		"imagebutler_commits_total",
		"imagebutler_cycle_duration_seconds",
		"imagebutler_cycles_total",
		"imagebutler_ecr_images_listed_total",
		"imagebutler_ecr_invalid_tags_total",
		"imagebutler_last_success_timestamp_seconds",
		"imagebutler_markers_held",
		"imagebutler_markers_without_policy",
		"imagebutler_policies",
		"imagebutler_push_retries_total",
		"imagebutler_repository_failures_total",
		"imagebutler_repository_last_attempt_timestamp_seconds",
	}
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Errorf("metric families (-want +got):\n%s", diff)
	}
	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{"cycles failure", testutil.ToFloat64(m.cycles.WithLabelValues("failure")), 1},
		{"policies resolved", testutil.ToFloat64(m.policies.WithLabelValues(PolicyResolved)), 1},
		{"policies list_failed", testutil.ToFloat64(m.policies.WithLabelValues(PolicyListFailed)), 1},
		{"markers without policy", testutil.ToFloat64(m.orphanMarkers), 1},
		{"commits", testutil.ToFloat64(m.commits.WithLabelValues(rs.Name)), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// A partly failed repository has no last-success time, but a failure and
	// an attempt.
	if v := testutil.ToFloat64(m.lastSuccess.WithLabelValues(name)); v != 0 {
		t.Errorf("last success = %v, want 0", v)
	}
	if v := testutil.ToFloat64(m.failures.WithLabelValues(name)); v != 1 {
		t.Errorf("failures = %v, want 1", v)
	}
	if v := testutil.ToFloat64(m.lastAttempt.WithLabelValues(name)); v < float64(st.LastStarted.Unix()) {
		t.Errorf("last attempt = %v, want at least %d", v, st.LastStarted.Unix())
	}

	// The summary and the log line say partial and name the commit.
	r := results[0]
	short := r.Commit[:12]
	if got := r.Summary(); !strings.HasPrefix(got, "PARTIAL "+name+": 1 change(s), pushed "+short+"; failed: policy shop:api: ") {
		t.Errorf("summary = %q", got)
	}
	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["repo"] == name && m["level"] == "ERROR" {
			line = m
		}
	}
	if line == nil || line["msg"] != "repository partly failed" || line["outcome"] != OutcomePartial || line["commit"] != r.Commit || !strings.Contains(fmt.Sprint(line["err"]), "shop:api") {
		t.Errorf("log line = %v\n%s", line, logs.String())
	}
}

func TestOutcome(t *testing.T) {
	failed := errors.New("x")
	tests := []struct {
		r    RepoResult
		want string
	}{
		{RepoResult{}, OutcomeUpToDate},
		{RepoResult{Commit: "c"}, OutcomePushed},
		{RepoResult{Commit: "c", Diff: "d"}, OutcomeWouldPush},
		{RepoResult{Commit: "c", Err: failed}, OutcomePartial},
		{RepoResult{Commit: "c", Diff: "d", Err: failed}, OutcomePartial},
		{RepoResult{Err: failed}, OutcomeFailed},
	}
	for _, tt := range tests {
		if got := tt.r.Outcome(); got != tt.want {
			t.Errorf("%+v: outcome %q, want %q", tt.r, got, tt.want)
		}
	}
}

// Hostile input cannot grow /status and the log without bound: problems
// are capped per repository, each message at MaxMessage bytes.
func TestStatusCapsProblemsAndMessages(t *testing.T) {
	var r RepoResult
	for i := range 150 {
		r.Problems = append(r.Problems, fmt.Errorf("problem %d", i))
	}
	huge := strings.Repeat("é", 10<<10) // 20 KiB of two-byte runes
	r.Problems[0] = errors.New(huge)
	r.Err = errors.New(huge)
	rs := r.status(time.Now(), 100)
	if len(rs.Problems) != 101 || rs.Problems[100] != "and 50 more problem(s); raise maxProblems to see them" {
		t.Errorf("%d problems, last %q", len(rs.Problems), rs.Problems[len(rs.Problems)-1])
	}
	for _, s := range []string{rs.Problems[0], rs.Error, r.Summary()} {
		if len(s) > MaxMessage+200 || !strings.Contains(s, "more bytes)") || !utf8.ValidString(s) {
			t.Errorf("message of %d bytes not clipped to about %d: %q...", len(s), MaxMessage, s[:40])
		}
	}
}

func TestOutcomeLabelsAreBounded(t *testing.T) {
	for code, want := range map[string]string{"ThrottlingException": "ThrottlingException", "timeout": "timeout", "X-Evil-" + strings.Repeat("a", 99): "other", "": "other"} {
		if got := outcomeLabel(code); got != want {
			t.Errorf("outcomeLabel(%q) = %q, want %q", code, got, want)
		}
	}
}

// /status keeps the last commit pushed through the cycles that push
// nothing after it.
func TestStatusKeepsLastPush(t *testing.T) {
	bare := newRemote(t, map[string]string{"web.yaml": manifest})
	l := &fakeLister{calls: map[policy.ImageRef]int{}, images: map[string][]policy.Image{
		"shop_web": {{Tags: []string{"sha-1"}, Digest: digestOf("1"), PushedAt: pushed(1)}},
		"shop_api": {{Tags: []string{"sha-1"}, Digest: digestOf("a1"), PushedAt: pushed(1)}},
	}}
	s := newTestScanner(testConfig(t, bare), l)
	first := s.RunOnce(context.Background())[0]
	if first.Commit == "" {
		t.Fatalf("first cycle pushed nothing: %v", first.Err)
	}
	for range 2 {
		s.RunOnce(context.Background())
		rs := s.Status().Repositories[0]
		if rs.Commit != "" || rs.LastPush == nil || rs.LastPush.Commit != first.Commit {
			t.Errorf("status after a cycle with nothing to push: commit %q, last push %+v; want %s", rs.Commit, rs.LastPush, first.Commit)
		}
	}
}
