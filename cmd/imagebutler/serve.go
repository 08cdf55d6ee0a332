package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/imagebutler/imagebutler/cluster"
	"github.com/imagebutler/imagebutler/config"
	"github.com/imagebutler/imagebutler/events"
	"github.com/imagebutler/imagebutler/notify"
	"github.com/imagebutler/imagebutler/scanner"
	"github.com/imagebutler/imagebutler/statuspage"
)

// defineRun declares the flags of `imagebutler run`.
func defineRun(fs *flag.FlagSet, stdout, _ io.Writer) func(context.Context, []string) error {
	st := newSetup(fs, stdout, "auto", "json, text, or auto (json unless stdout is a terminal)")
	grace := fs.Duration("grace", 25*time.Second, "on SIGTERM, how long a running cycle may go on before it is cancelled")
	return func(ctx context.Context, args []string) error {
		if err := noArgs("run", args); err != nil {
			return err
		}
		return serve(ctx, st, *grace)
	}
}

// serve is `imagebutler run`: cycles on the schedule, with HTTP endpoints,
// until SIGTERM or SIGINT.
func serve(ctx context.Context, st *setup, grace time.Duration) error {
	cfg, log, release, err := st.load()
	if err != nil {
		return err
	}
	defer release()
	schedule, err := config.ScheduleParser.Parse(cfg.Schedule)
	if err != nil {
		return &exitError{2, err} // validated by config.Load already
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfoGauge(readBuildInfo()))
	metrics := scanner.NewMetrics(reg)
	lister, err := scanner.NewECR(ctx, cfg.AWS, metrics, log)
	if err != nil {
		return err
	}
	verifier, err := newVerifier(ctx, lister, cfg, log)
	if err != nil {
		return err
	}
	opts := []scanner.Option{scanner.WithMetrics(metrics), scanner.WithSignatures(verifier)}
	ev := cfg.Events
	// With events, a pass runs when a candidate a gate held for its age
	// comes of age (the dispatcher is made below, with the scanner).
	var wake func(repo string, at time.Time)
	if ev.SQS != nil || ev.Webhook != nil {
		opts = append(opts, scanner.WithEvents(), scanner.WithWake(func(repo string, at time.Time) {
			if wake != nil {
				wake(repo, at)
			}
		}))
	}
	// A running cycle may finish after the signal, up to the grace period.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	if len(cfg.Notify) > 0 {
		// Delivered in the background until the process stops.
		n := notify.New(cfg.Notify, cfg.Repositories, reg, log)
		opts = append(opts, scanner.WithObserver(n.Observe))
		go n.Run(work)
	}
	member, setScanner, err := joinCluster(work, cfg, reg, log)
	if err != nil {
		return err
	}
	if member != nil {
		opts = append(opts, scanner.WithShards(member))
	}
	s := scanner.New(cfg, lister, log, opts...)
	setScanner(s)

	var (
		eventMetrics *events.Metrics
		hook         http.Handler
		passHandler  http.Handler // passes forwarded by other replicas
	)
	if ev.SQS != nil || ev.Webhook != nil {
		eventMetrics = events.NewMetrics(reg)
		// Event-started passes stop with the signal (the poll's last cycle
		// may still finish); they run under work, so one running then may
		// finish too.
		passes, stopPasses := context.WithCancel(work)
		defer stopPasses()
		context.AfterFunc(ctx, stopPasses)
		var (
			target events.Target = s
			fwd    *cluster.Forwarder
		)
		if member != nil {
			// A pass over a repository another replica holds runs there.
			fwd = cluster.NewForwarder(s, member, cfg.Cluster.SecretFile)
			target = fwd
		}
		d := events.NewDispatcher(passes, target, time.Duration(ev.Coalesce), ev.PassesPerMinute, cfg.Concurrency, eventMetrics, log)
		if fwd != nil {
			passHandler = clusterHandlers(s, fwd, d, cfg.Cluster.SecretFile, log)
		}
		wake = d.At
		if ev.SQS != nil {
			q, err := events.NewSQS(ctx, *ev.SQS, cfg.AWS, target, d, cfg.LongestTimeout()+time.Duration(ev.Coalesce)+time.Minute, eventMetrics, log)
			if err != nil {
				return err
			}
			if fwd != nil {
				q.RelayTo(fwd)
			}
			go q.Run(ctx)
			log.Info("reading ECR push events", "queue", ev.SQS.QueueURL, "region", ev.SQS.Region)
		}
		if ev.Webhook != nil {
			hook = events.NewWebhook(cfg.Repositories, ev.Webhook.SecretFile, d, eventMetrics, log)
		}
	}

	probes, data := handlers(s, member, reg, cfg.ListenMetrics != "", eventMetrics, hook, passHandler)
	var servers []*http.Server
	for _, l := range []struct {
		addr    string
		handler http.Handler
		what    string
	}{{*cfg.Listen, probes, "health"}, {cfg.ListenMetrics, data, "metrics and status"}} {
		if l.addr == "" || l.handler == nil {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", l.addr, err)
		}
		// Headers in 10 s and 64 KiB at most, whoever sends them (the
		// webhook bounds what it reads of a body itself), idle connections
		// closed after two minutes.
		srv := &http.Server{Handler: l.handler, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10, IdleTimeout: 2 * time.Minute}
		servers = append(servers, srv)
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("HTTP server stopped", "err", err.Error())
			}
		}()
		log.Info("serving HTTP", "addr", ln.Addr().String(), "endpoints", l.what)
	}

	stopGrace := context.AfterFunc(ctx, func() {
		log.Info("stopping: no new cycles; the running one may finish", "grace", grace)
		time.AfterFunc(grace, cancelWork)
	})
	defer stopGrace()

	log.Info("imagebutler started", "version", readBuildInfo().Version, "commit", readBuildInfo().Commit, "schedule", cfg.Schedule, "repositories", len(cfg.Repositories))
	if member != nil {
		member.Start()
	}
	s.Run(ctx, work, schedule)
	if member != nil {
		// The running passes end (or the grace period does), then the
		// shards are released for the other replicas to take at once.
		member.Stop(work)
	}

	shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, srv := range servers {
		srv.Shutdown(shutdown)
	}
	log.Info("imagebutler stopped")
	return nil
}

// handlers returns what listen serves (probes, the webhook hook and the
// passes other replicas forward when they are not nil) and what listenMetrics serves (data). Without a separate
// metrics address (split false) probes serves everything and data is nil:
// /healthz, /readyz, /metrics, /status. ev may be nil.
func handlers(s *scanner.Scanner, member *cluster.Member, reg *prometheus.Registry, split bool, ev *events.Metrics, hook, pass http.Handler) (probes, data http.Handler) {
	mux := http.NewServeMux()
	if hook != nil {
		mux.Handle("POST /hooks/git", hook)
	}
	if pass != nil {
		mux.Handle("POST /cluster/", pass)
	}
	dataMux := mux
	if split {
		dataMux = http.NewServeMux()
		data = dataMux
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if s.Status().Cycles == 0 {
			http.Error(w, "the first cycle has not finished", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	dataMux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	dataMux.Handle("GET /{$}", statuspage.Handler(s.Status, ev.Recent))
	dataMux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		var cl *cluster.Status
		if member != nil {
			st := member.Status()
			cl = &st
		}
		enc.Encode(struct {
			scanner.Status
			Cluster *cluster.Status `json:"cluster,omitempty"` // this replica's shards, when clustered
			Events  []events.Record `json:"events,omitempty"`  // the last events, oldest first
		}{s.Status(), cl, ev.Recent()})
	})
	return mux, data
}

// buildInfoGauge is imagebutler_build_info: always 1, labelled with the build.
func buildInfoGauge(b buildInfo) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "imagebutler_build_info", Help: "Always 1; the labels say which build runs.",
		ConstLabels: prometheus.Labels{"version": b.Version, "commit": b.Commit, "goversion": b.GoVersion},
	})
	g.Set(1)
	return g
}
