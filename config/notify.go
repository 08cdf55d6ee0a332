package config

import (
	"fmt"
	"path"
	"slices"
)

// Receiver is one place the butler tells people what it did: a generic
// webhook, a Slack incoming webhook or a Microsoft Teams Workflows webhook.
type Receiver struct {
	// Name names the receiver in metrics and logs; default "<type>-<n>".
	Name string `yaml:"name"`
	// Type is webhook, slack or teams.
	Type string `yaml:"type"`
	// URLFile holds the receiver's URL, a secret (Slack's and Teams' URLs
	// carry their own key); read at each delivery.
	URLFile string `yaml:"urlFile"`
	// SecretFile, for type webhook, holds the key of the HMAC-SHA256
	// signature in X-Imagebutler-Signature-256; read at each delivery.
	SecretFile string `yaml:"secretFile"`
	// Events are the kinds of event sent (default: all of NotifyEvents).
	Events []string `yaml:"events"`
	// Repositories, when set, limits the events to repositories whose name
	// (url@branch) matches one of these path.Match patterns.
	Repositories []string `yaml:"repositories"`
	// FailingAfter is how many failed cycles in a row make a failing event
	// (default 3).
	FailingAfter int `yaml:"failingAfter"`
}

// The receiver types and the events a receiver may ask for.
var (
	ReceiverTypes = []string{"webhook", "slack", "teams"}
	NotifyEvents  = []string{"pushed", "pull-request", "held", "failing", "recovered"}
)

// DefaultFailingAfter is Receiver.FailingAfter's default.
const DefaultFailingAfter = 3

// Wants reports whether the receiver takes event kind from the repository
// named repo.
func (r Receiver) Wants(kind, repo string) bool {
	if !slices.Contains(r.Events, kind) {
		return false
	}
	if len(r.Repositories) == 0 {
		return true
	}
	return slices.ContainsFunc(r.Repositories, func(p string) bool {
		ok, _ := path.Match(p, repo)
		return ok || p == repo
	})
}

func (c *Config) defaultNotify() {
	for i := range c.Notify {
		r := &c.Notify[i]
		if r.Name == "" {
			r.Name = fmt.Sprintf("%s-%d", r.Type, i)
		}
		if len(r.Events) == 0 {
			r.Events = slices.Clone(NotifyEvents)
		}
		if r.FailingAfter == 0 {
			r.FailingAfter = DefaultFailingAfter
		}
	}
}

func (c *Config) validateNotify(p *problems, at func(keys ...any) int) {
	names := map[string]int{}
	for i, r := range c.Notify {
		field := fmt.Sprintf("notify[%d]", i)
		if !slices.Contains(ReceiverTypes, r.Type) {
			p.add(at("notify", i, "type"), field+".type", "must be one of webhook, slack, teams, got %q", r.Type)
		}
		if r.URLFile == "" {
			p.add(at("notify", i), field+".urlFile", "must be set: the file holding the receiver's URL")
		}
		if r.SecretFile != "" && r.Type != "webhook" {
			p.add(at("notify", i, "secretFile"), field+".secretFile", "is for type webhook (Slack's and Teams' URLs carry their key)")
		}
		for j, e := range r.Events {
			if !slices.Contains(NotifyEvents, e) {
				p.add(at("notify", i, "events", j), fmt.Sprintf("%s.events[%d]", field, j), "must be one of pushed, pull-request, held, failing, recovered, got %q", e)
			}
		}
		for j, pat := range r.Repositories {
			if _, err := path.Match(pat, ""); err != nil {
				p.add(at("notify", i, "repositories", j), fmt.Sprintf("%s.repositories[%d]", field, j), "%q is not a pattern: %v", pat, err)
			}
		}
		if r.FailingAfter < 1 || r.FailingAfter > 1000 {
			p.add(at("notify", i, "failingAfter"), field+".failingAfter", "must be between 1 and 1000, got %d", r.FailingAfter)
		}
		if prev, dup := names[r.Name]; dup {
			p.add(at("notify", i, "name"), field+".name", "%q is also the name of notify[%d]", r.Name, prev)
		}
		names[r.Name] = i
	}
}
