package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagebutler/imagebutler/cluster"
	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/events"
	"github.com/imagebutler/imagebutler/scanner"
)

// joinCluster makes this replica's cluster.Member when cfg has a cluster
// section (nil otherwise). The scanner, made after it, is set by setScanner:
// a shard taken runs a pass over each of its repositories at once rather
// than at the next poll, at most concurrency at a time, under work.
func joinCluster(work context.Context, cfg *config.Config, reg prometheus.Registerer, log *slog.Logger) (*cluster.Member, func(*scanner.Scanner), error) {
	if cfg.Cluster == nil {
		return nil, func(*scanner.Scanner) {}, nil
	}
	c := *cfg.Cluster
	leases, err := cluster.Connect(c)
	if err != nil {
		return nil, nil, err
	}
	address := c.Address
	if ip := os.Getenv("POD_IP"); address == "" && ip != "" && *cfg.Listen != "" {
		if _, port, err := net.SplitHostPort(*cfg.Listen); err == nil {
			address = "http://" + net.JoinHostPort(ip, port)
		}
	}
	taken := make(chan int, c.Shards)
	m := cluster.New(c, leases, address, log.With("identity", c.Identity), cluster.WithMetrics(cluster.NewMetrics(reg)),
		cluster.OnAcquire(func(n int) { taken <- n }))
	setScanner := func(s *scanner.Scanner) {
		sem := make(chan struct{}, max(1, cfg.Concurrency))
		go func() {
			for n := range taken {
				for _, r := range cfg.Repositories {
					if m.ShardOf(r.Name()) != n {
						continue
					}
					sem <- struct{}{}
					go func() {
						defer func() { <-sem }()
						if _, err := s.Poll(work, r.Name()); err != nil && !errors.Is(err, scanner.ErrNotHeld) {
							log.Warn("the pass over a shard just taken failed", "repo", r.Name(), "err", err.Error())
						}
					}()
				}
			}
		}()
	}
	log.Info("joining the cluster", "cluster", c.String(), "address", address)
	return m, setScanner, nil
}

// clusterHandlers serves what the other replicas send: passes over the
// repositories this replica holds (through the scanner: the sender's
// dispatcher coalesced and paced them) and ECR pushes, whose passes over
// the repositories held here go through this replica's dispatcher d.
func clusterHandlers(s *scanner.Scanner, fwd *cluster.Forwarder, d *events.Dispatcher, keyFile string, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST "+cluster.PassPath, cluster.PassHandler(s, keyFile, log))
	mux.Handle("POST "+cluster.PushPath, cluster.PushHandler(func(ctx context.Context, push scanner.Push, since time.Time) error {
		return d.Await(ctx, fwd.Users(push.Ref), []scanner.Push{push}, since)
	}, keyFile, log))
	return mux
}
