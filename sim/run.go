package sim

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
)

// RunConfig is one run of `hookstream sim`. Each field is set by the flags
// named in its comment, and Run's errors name those flags.
type RunConfig struct {
	// Generate is what to generate (--customers, --seed, --start, --span,
	// --step-delay). A zero Start means now, not Config's fixed default.
	Generate Config
	// Send is how to deliver it (--url, the first of --webhook-secrets,
	// --rate, --concurrency, --duplicates, --reorder, --reorder-delay,
	// --time-scale). A zero Seed takes Generate.Seed.
	Send SendConfig
	// Continuous generates and sends without end until ctx ends; with a
	// Send.Rate, each event when its created time comes, customers paced
	// so that this happens at about the rate (--continuous).
	Continuous bool
	// Truth, when set, receives the ground truth (WriteTruth's format),
	// Truth+".paths.json" the lifecycle paths and Truth+".incidents.json"
	// the incidents (--truth).
	Truth string
	// Verify compares the ground truth, after sending, with the Redis
	// streams ("streams") or the events table ("events"); "" or "none"
	// skips it (--verify). It needs a run that ends.
	Verify string
	// VerifyTimeout is how long Verify polls for the store to match before
	// it reports the difference (--verify-timeout, default 30s).
	VerifyTimeout time.Duration
	// RedisURL, Namespace and Partitions locate the streams Verify
	// "streams" reads (--redis-url, --namespace, --partitions).
	RedisURL, Namespace string
	Partitions          int
	// DatabaseURL is the PostgreSQL Verify "events" reads (--database-url).
	DatabaseURL string
	// APIAddr, when set, is where the fake Dwolla API (NewAPI) is served
	// from the same ground truth while the run sends, and after its summary
	// until ctx ends (--api-addr, such as 127.0.0.1:9090; port 0 picks
	// one). The event bodies' _links then point at it.
	APIAddr string
	// API configures the fake API (--api-key, --api-secret, --api-429,
	// --api-5xx, --api-latency). Its Deliver is Send, its Seed defaults to
	// Generate.Seed and its BaseURL to http://APIAddr.
	API APIConfig
	// Out receives a progress line every 5 seconds and the summary (nil:
	// discarded).
	Out io.Writer
}

func (c RunConfig) withDefaults() (RunConfig, error) {
	c.Verify = cmp.Or(c.Verify, "none")
	c.VerifyTimeout = cmp.Or(c.VerifyTimeout, 30*time.Second)
	c.Send.Seed = cmp.Or(c.Send.Seed, c.Generate.Seed)
	c.API.Seed = cmp.Or(c.API.Seed, c.Generate.Seed)
	if c.Generate.Start.IsZero() {
		c.Generate.Start = time.Now().UTC()
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	switch c.Verify {
	case "none", "streams", "events":
	default:
		return c, fmt.Errorf("--verify %q: want none, streams or events", c.Verify)
	}
	switch {
	case c.Continuous && c.Verify != "none":
		return c, errors.New("--verify needs a run that ends; drop --continuous or --verify")
	case len(c.Send.Secret) == 0:
		return c, errors.New("--webhook-secrets is empty; set the receiver's secret (HOOKSTREAM_WEBHOOK_SECRETS)")
	case c.Verify == "streams" && (c.RedisURL == "" || c.Namespace == "" || c.Partitions <= 0):
		return c, errors.New("--verify streams needs --redis-url, --namespace and --partitions")
	case c.Verify == "events" && c.DatabaseURL == "":
		return c, errors.New("--verify events needs --database-url")
	}
	return c, nil
}

// Run generates lifecycles, delivers them as signed webhooks and, if asked,
// writes the ground truth and verifies that the store holds each event
// exactly once. It returns an error when a delivery was given up or the
// verification found a difference.
func Run(ctx context.Context, c RunConfig) error {
	c, err := c.withDefaults()
	if err != nil {
		return err
	}
	if c.Continuous {
		return runContinuous(ctx, c)
	}
	return runOnce(ctx, c)
}

// runOnce generates a finite scenario, sends it and optionally verifies it.
func runOnce(ctx context.Context, c RunConfig) error {
	began := time.Now()
	srv, err := c.startAPI(ctx)
	if err != nil {
		return err
	}
	defer srv.stop()
	sc := Generate(c.Generate)
	if srv != nil {
		srv.api.Add(sc.Events...)
	}
	fmt.Fprintf(c.Out, "hookstream sim: %d events from %d customers (%d lifecycles, seed %d), created from %s\n",
		len(sc.Events), c.Generate.Customers, sc.Lifecycles(), c.Generate.Seed, sc.Events[0].Created.Format(time.RFC3339))
	for _, in := range IncidentRecords(c.Generate) {
		fmt.Fprintf(c.Out, "  incident    %s from %s to %s (event time)\n", in.Kind, in.Start.Format(time.RFC3339), in.End.Format(time.RFC3339))
	}
	if c.Truth != "" {
		if err := writeTruthFiles(c.Truth, sc); err != nil {
			return err
		}
		if err := writeIncidentsFile(c.Truth+".incidents.json", c.Generate); err != nil {
			return err
		}
	}
	sender, err := NewSender(c.Send)
	if err != nil {
		return err
	}
	srv.announce(c.Out)
	feedCtx, stopFeed := context.WithCancel(ctx)
	defer stopFeed()
	in := make(chan Event)
	go func() {
		defer close(in)
		for _, ev := range sc.Events {
			select {
			case in <- ev:
			case <-feedCtx.Done():
				return
			}
		}
	}()
	stopProgress := progress(c.Out, sender, nil)
	runErr := sender.Run(ctx, in)
	stopProgress()
	stats := sender.Stats()
	c.summary(time.Since(began), int64(len(sc.Events)), sc.Lifecycles(), stats)
	if runErr != nil {
		return runErr
	}

	var verifyErr error
	if c.Verify != "none" {
		truth := make([]string, len(sc.Events))
		for i := range sc.Events {
			truth[i] = sc.Events[i].ID
		}
		verifyErr = c.verify(ctx, truth)
	}
	srv.serveOn(ctx, c.Out)
	if stats.GaveUp > 0 {
		return errors.Join(verifyErr, fmt.Errorf("%d deliveries were given up after %d retries; is the receiver at %s up and using the same secret?",
			stats.GaveUp, MaxRetries, c.Send.URL))
	}
	return verifyErr
}

// runContinuous generates and sends until ctx ends. With a rate, each event
// is handed to the sender when its created time comes, and customers are
// spaced so that this happens at about the rate.
func runContinuous(ctx context.Context, c RunConfig) error {
	gen, send := c.Generate, c.Send
	if send.Rate > 0 {
		// Pace customers by the mean number of events one customer produces.
		const sample = 500
		perCustomer := float64(len(Generate(Config{Customers: sample, Seed: gen.Seed}).Events)) / sample
		gen.Customers = 1
		gen.Span = time.Duration(perCustomer / send.Rate * float64(time.Second))
		send.Rate = 0 // the created times pace the traffic
	}
	srv, err := c.startAPI(ctx)
	if err != nil {
		return err
	}
	defer srv.stop()
	gen.Host, send.Attempts = c.Generate.Host, c.Send.Attempts
	src := NewOrdered(gen)
	sender, err := NewSender(send)
	if err != nil {
		return err
	}
	srv.announce(c.Out)

	var truth *bufio.Writer
	if c.Truth != "" {
		f, err := os.Create(c.Truth)
		if err != nil {
			return fmt.Errorf("create ground truth file: %w; check that its directory exists and is writable", err)
		}
		defer f.Close()
		truth = bufio.NewWriterSize(f, 256<<10)
	}

	var (
		mu        sync.Mutex
		generated int64
		truthErr  error
	)
	in := make(chan Event, 1024)
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		defer close(in)
		var tw *TruthWriter
		if truth != nil {
			tw = NewTruthWriter(truth)
		}
		for {
			var ev Event
			if c.Send.Rate > 0 {
				var err error
				if ev, err = src.NextDue(ctx); err != nil {
					return
				}
			} else {
				ev = src.Next()
			}
			if srv != nil {
				srv.api.Add(ev)
			}
			select {
			case in <- ev:
			case <-ctx.Done():
				return
			}
			mu.Lock()
			generated++
			if tw != nil && truthErr == nil {
				truthErr = tw.Write([]Event{ev})
			}
			mu.Unlock()
		}
	}()
	fmt.Fprintf(c.Out, "hookstream sim: sending continuously to %s at about %g events/s (seed %d); Ctrl-C stops\n", c.Send.URL, c.Send.Rate, c.Generate.Seed)
	began := time.Now()
	stopProgress := progress(c.Out, sender, func() int64 { mu.Lock(); defer mu.Unlock(); return generated })
	runErr := sender.Run(ctx, in)
	stopProgress()
	<-fed

	c.summary(time.Since(began), generated, 0, sender.Stats())
	if truth != nil {
		if truthErr == nil {
			truthErr = truth.Flush()
		}
		if truthErr != nil {
			return fmt.Errorf("write ground truth to %s: %w", c.Truth, truthErr)
		}
		if err := writePathsFile(c.Truth+".paths.json", src.Paths()); err != nil {
			return err
		}
		if err := writeIncidentsFile(c.Truth+".incidents.json", c.Generate); err != nil {
			return err
		}
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	return nil
}

// writeTruthFiles writes sc's ground truth to path and its lifecycle paths
// to path.paths.json.
func writeTruthFiles(path string, sc *Scenario) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create ground truth file: %w; check that its directory exists and is writable", err)
	}
	if err := WriteTruth(f, sc); err != nil {
		f.Close()
		return fmt.Errorf("write ground truth to %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write ground truth to %s: %w", path, err)
	}
	return writePathsFile(path+".paths.json", sc.Paths)
}

// writeIncidentsFile writes the incidents of cfg, when and what, to path.
func writeIncidentsFile(path string, cfg Config) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create incidents file: %w", err)
	}
	if err := WriteIncidents(f, cfg); err != nil {
		f.Close()
		return fmt.Errorf("write incidents to %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write incidents to %s: %w", path, err)
	}
	return nil
}

func writePathsFile(path string, paths map[string]int) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create lifecycle paths file: %w", err)
	}
	if err := WritePaths(f, paths); err != nil {
		f.Close()
		return fmt.Errorf("write lifecycle paths to %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write lifecycle paths to %s: %w", path, err)
	}
	return nil
}

// progress writes a line to out every 5 seconds until the returned stop is
// called. generated, if set, reports how many events have been generated.
func progress(out io.Writer, s *Sender, generated func() int64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		var last int64
		for {
			select {
			case <-done:
				return
			case <-t.C:
				st := s.Stats()
				gen := ""
				if generated != nil {
					gen = fmt.Sprintf("%d events  ", generated())
				}
				var non2xx int64
				for _, n := range st.Non2xx {
					non2xx += n
				}
				fmt.Fprintf(out, "%s  %sdelivered %d (%.0f/s)  duplicates %d  reordered %d  retries %d  gave up %d  net errors %d  non-2xx %d\n",
					time.Now().Format("15:04:05"), gen, st.Delivered, float64(st.Delivered-last)/5,
					st.Duplicates, st.Reordered, st.Retries, st.GaveUp, st.NetErrors, non2xx)
				last = st.Delivered
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// summary writes what a run did; lifecycles is 0 for a continuous run.
func (c RunConfig) summary(took time.Duration, events int64, lifecycles int, st SendStats) {
	out := c.Out
	secs := max(took.Seconds(), 1e-9)
	fmt.Fprintf(out, "hookstream sim: done in %s\n", took.Round(time.Millisecond))
	if lifecycles > 0 {
		fmt.Fprintf(out, "  events      %d unique from %d customers, %d lifecycles (seed %d)\n", events, c.Generate.Customers, lifecycles, c.Generate.Seed)
	} else {
		fmt.Fprintf(out, "  events      %d generated (seed %d)\n", events, c.Generate.Seed)
	}
	fmt.Fprintf(out, "  requests    %d (%.0f/s), %d answered 2xx\n", st.Sent, float64(st.Sent)/secs, st.Delivered)
	fmt.Fprintf(out, "  injected    %d duplicate deliveries, %d reordered, %d dropped (never delivered)\n", st.Duplicates, st.Reordered, st.Dropped)
	non2xx := "none"
	if len(st.Non2xx) > 0 {
		var parts []string
		for _, code := range slices.Sorted(maps.Keys(st.Non2xx)) {
			parts = append(parts, fmt.Sprintf("%d×%d", st.Non2xx[code], code))
		}
		non2xx = strings.Join(parts, " ")
	}
	fmt.Fprintf(out, "  failures    %d retries, %d given up, %d network errors, non-2xx: %s\n", st.Retries, st.GaveUp, st.NetErrors, non2xx)
	if c.Truth != "" {
		fmt.Fprintf(out, "  truth       %s (paths in %s.paths.json)\n", c.Truth, c.Truth)
	}
}

// verify polls the chosen store until it matches truth or VerifyTimeout
// passes, then writes the report.
func (c RunConfig) verify(ctx context.Context, truth []string) error {
	var check func(context.Context) (Report, error)
	switch c.Verify {
	case "streams":
		rdb, err := stream.NewClient(c.RedisURL, 10*time.Second, 4)
		if err != nil {
			return fmt.Errorf("--redis-url: %w", err)
		}
		defer rdb.Close()
		keys := stream.NewKeys(c.Namespace, c.Partitions)
		check = func(ctx context.Context) (Report, error) { return VerifyStreams(ctx, rdb, keys, truth) }
	case "events":
		pool, err := store.Open(ctx, c.DatabaseURL)
		if err != nil {
			return err
		}
		defer pool.Close()
		check = func(ctx context.Context) (Report, error) { return VerifyEvents(ctx, pool, truth) }
	}

	deadline := time.Now().Add(c.VerifyTimeout)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		rep, err := check(ctx)
		if err == nil && rep.OK() {
			fmt.Fprintf(c.Out, "verify %s: %s\n", c.Verify, rep)
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("verify %s: %w", c.Verify, err)
			}
			fmt.Fprintf(c.Out, "verify %s: %s\n", c.Verify, rep)
			return fmt.Errorf("verify %s: the store does not hold exactly the %d generated events (waited %s)", c.Verify, rep.Expected, c.VerifyTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// apiServer is the fake API of a run, served on RunConfig.APIAddr. Its
// methods do nothing on a nil *apiServer (no --api-addr).
type apiServer struct {
	api  *API
	srv  *http.Server
	url  string
	key  string
	sec  string
	done chan struct{}
}

// startAPI listens on c.APIAddr and serves the fake API there, pointing the
// generated bodies' links at it and the sender's attempts into it.
func (c *RunConfig) startAPI(ctx context.Context) (*apiServer, error) {
	if c.APIAddr == "" {
		return nil, nil
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", c.APIAddr)
	if err != nil {
		return nil, fmt.Errorf("listen for the fake Dwolla API on --api-addr %s: %w; is the port free?", c.APIAddr, err)
	}
	cfg := c.API
	cfg.BaseURL = cmp.Or(cfg.BaseURL, "http://"+ln.Addr().String())
	cfg.Deliver = c.Send
	api, err := NewAPI(cfg)
	if err != nil {
		ln.Close()
		return nil, err
	}
	c.Generate.Host = cfg.BaseURL
	c.Send.Attempts = api
	s := &apiServer{
		api: api, url: cfg.BaseURL, key: cmp.Or(cfg.Key, DefaultAPIKey), sec: cmp.Or(cfg.Secret, DefaultAPISecret),
		srv:  &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln) // ErrServerClosed after stop
	}()
	return s, nil
}

// announce says where the API is and how to log in.
func (s *apiServer) announce(out io.Writer) {
	if s == nil {
		return
	}
	// The default credentials are public; credentials someone chose are
	// not printed (no secret in a log line).
	key, sec := s.key, s.sec
	if key != DefaultAPIKey {
		key = "<your --api-key>"
	}
	if sec != DefaultAPISecret {
		sec = "<your --api-secret>"
	}
	fmt.Fprintf(out, "hookstream sim: fake Dwolla API at %s (HOOKSTREAM_DWOLLA_API=%s HOOKSTREAM_DWOLLA_KEY=%s HOOKSTREAM_DWOLLA_SECRET=%s)\n",
		s.url, s.url, key, sec)
}

// serveOn keeps serving until ctx ends.
func (s *apiServer) serveOn(ctx context.Context, out io.Writer) {
	if s == nil {
		return
	}
	fmt.Fprintf(out, "hookstream sim: still serving the fake Dwolla API at %s (%d events, %d webhooks); Ctrl-C stops\n",
		s.url, s.api.Len(), s.api.Webhooks())
	select {
	case <-ctx.Done():
	case <-s.done:
	}
}

// stop closes the listener and waits up to 5 seconds for requests in flight.
func (s *apiServer) stop() {
	if s == nil {
		return
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(shutCtx)
	<-s.done
}
