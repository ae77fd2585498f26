package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/hookstream/hookstream/api"
	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/internal/scratch"
	"github.com/hookstream/hookstream/process"
	"github.com/hookstream/hookstream/store"
	"github.com/hookstream/hookstream/stream"
	"github.com/hookstream/hookstream/windows"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// APIConfig configures API; each field is the flag of `hookstream bench api`
// named in its comment. Zero values take the defaults in parentheses.
type APIConfig struct {
	// RedisURL (--redis-url) and DatabaseURL (--database-url) are the
	// servers. The live feed works in a fresh Redis namespace, deleted at
	// the end.
	RedisURL, DatabaseURL string
	// Partitions is the number of partition streams (--partitions, default 16).
	Partitions int
	// Schema holds the seeded events (--schema, default hsbench_api). It
	// is this benchmark's: it is reused when it holds a complete seed of the
	// same size, else dropped and seeded again. A schema of that name that
	// the benchmark did not make is refused, never dropped.
	Schema string
	// Keep keeps the seeded schema for the next run (--keep); without it the
	// schema is dropped at the end.
	Keep bool
	// Reseed seeds again even when the schema holds a complete seed (--reseed).
	Reseed bool
	// Events is how many events are seeded (--events, default 10,000,000).
	Events int
	// Span is the event time they spread over, ending at the seed's start
	// (--span, default 168h).
	Span time.Duration
	// Topics is how many topics the events have (--topics, default 50, at
	// most the catalogue's).
	Topics int
	// Customers is how many customers the customer_* events belong to
	// (--customers, default 200,000).
	Customers int
	// Requests is the measured requests per query kind, each answered both
	// by the API and by the query code called directly (--requests, default 500).
	Requests int
	// Warmup is the requests per query kind run first and not measured; the
	// API's answers are checked against the direct calls' in them (--warmup,
	// default 20).
	Warmup int
	// SkipQueries and SkipLive skip a phase (--no-queries, --no-live).
	SkipQueries, SkipLive bool
	// LiveClients is the live feed's SSE clients (--live-clients, default 100).
	LiveClients int
	// LiveRate is announced events per second (--live-rate, default 5000).
	LiveRate float64
	// LiveDuration is how long they are announced (--live-duration, default 30s).
	LiveDuration time.Duration
	// LiveBatchEvery is how often a batch is announced, as a processor
	// announces each committed batch (--live-batch-every, default 10ms).
	LiveBatchEvery time.Duration
	// CPUProfile, when set, receives a CPU profile of the metric queries
	// (API and direct) (--cpuprofile).
	CPUProfile string
	// Out receives the report, phase by phase (nil: discarded).
	Out io.Writer
}

func (c APIConfig) withDefaults() (APIConfig, error) {
	c.RedisURL = cmp.Or(c.RedisURL, defaultRedisURL)
	c.DatabaseURL = cmp.Or(c.DatabaseURL, defaultDatabaseURL)
	c.Partitions = cmp.Or(c.Partitions, defaultPartitions)
	c.Schema = cmp.Or(c.Schema, "hsbench_api")
	c.Events = cmp.Or(c.Events, 10_000_000)
	c.Span = cmp.Or(c.Span, 7*24*time.Hour)
	c.Topics = cmp.Or(c.Topics, 50)
	c.Customers = cmp.Or(c.Customers, 200_000)
	c.Requests = cmp.Or(c.Requests, 500)
	c.Warmup = cmp.Or(c.Warmup, 20)
	c.LiveClients = cmp.Or(c.LiveClients, 100)
	c.LiveRate = cmp.Or(c.LiveRate, 5000)
	c.LiveDuration = cmp.Or(c.LiveDuration, 30*time.Second)
	c.LiveBatchEvery = cmp.Or(c.LiveBatchEvery, 10*time.Millisecond)
	c.Out = orDiscard(c.Out)
	var bad error
	if strings.Trim(c.Schema, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" || c.Schema[0] < 'a' || c.Schema[0] > 'z' {
		bad = fmt.Errorf("--schema %q: use lower-case letters, digits and _, starting with a letter", c.Schema)
	}
	if c.Span < time.Duration(25)*time.Hour && c.Span > 0 {
		bad = errors.Join(bad, fmt.Errorf("--span %s: at least 25h (the metric query reads the last 24 h)", c.Span))
	}
	return c, errors.Join(bad, notNegative("--partitions", c.Partitions), notNegative("--events", c.Events),
		notNegative("--span", c.Span), notNegative("--topics", c.Topics), notNegative("--customers", c.Customers),
		notNegative("--requests", c.Requests), notNegative("--warmup", c.Warmup), notNegative("--live-clients", c.LiveClients),
		notNegative("--live-rate", c.LiveRate), notNegative("--live-duration", c.LiveDuration),
		notNegative("--live-batch-every", c.LiveBatchEvery))
}

// QueryTimes is one query kind measured through the API and by calling the
// same query code directly, interleaved in one run; both sorted.
type QueryTimes struct {
	Name        string
	API, Direct []time.Duration
	Bytes       int64 // mean size of the API's answers
	Target      time.Duration
}

// LiveResult is what the live phase measured.
type LiveResult struct {
	Clients int
	Sent    int64 // events announced
	Batches int64 // entries added to the stream
	// Latency is every delivered event's time from its announcement to
	// its arrival at a client, sorted.
	Latency Histogram
	// MinGot and MaxGot are the fewest and most events a client got.
	MinGot, MaxGot int64
	// Missing and Repeated count, over all clients, events skipped or got
	// twice (by their sequence numbers).
	Missing, Repeated int64
	// Ended is clients whose stream ended before the phase did.
	Ended int
	// Dropped is the hub's dropped counter over the phase.
	Dropped    int64
	Took       time.Duration
	MachineCPU float64 // busy share of the machine's CPUs over the phase
}

// APIReport is what API measured.
type APIReport struct {
	Seeded    bool // false: the schema was reused
	SeedTook  time.Duration
	SeedSteps []string // what seeding did and how long each step took
	Queries   []QueryTimes
	Live      *LiveResult
}

// API measures the JSON API and the live feed against a seeded schema of
// c.Events stored events (see `hookstream bench api --help`).
func API(ctx context.Context, c APIConfig) (APIReport, error) {
	var rep APIReport
	c, err := c.withDefaults()
	if err != nil {
		return rep, err
	}
	rdb, err := stream.NewClient(c.RedisURL, 5*time.Second, 16)
	if err != nil {
		return rep, err
	}
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return rep, fmt.Errorf("redis at %s: %w", c.RedisURL, err)
	}
	ns := scratch.Name("hsbencha")
	keys := stream.NewKeys(ns, c.Partitions)
	defer stream.DeleteKeys(context.Background(), rdb, keys.Pattern())
	admin, err := store.Open(ctx, c.DatabaseURL)
	if err != nil {
		return rep, err
	}
	defer admin.Close()

	var pgVersion string
	admin.QueryRow(ctx, "SHOW server_version").Scan(&pgVersion)
	fmt.Fprintf(c.Out, "machine: %s/%s, %d CPUs, GOMAXPROCS %d, %s; PostgreSQL %s\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), pgVersion)
	sd, err := seedAPI(ctx, admin, c, &rep)
	if err != nil {
		return rep, err
	}
	if !c.Keep {
		defer admin.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+c.Schema+" CASCADE")
	}
	db, err := store.Open(ctx, scratch.WithSearchPath(c.DatabaseURL, c.Schema))
	if err != nil {
		return rep, err
	}
	defer db.Close()

	secret := hex.EncodeToString(randomBytes(16))
	tokens, err := api.ParseTokens("bench:admin:" + secret)
	if err != nil {
		return rep, err
	}
	// The access log is formatted as in production, then discarded.
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := api.New(rdb, db, api.Config{Keys: keys, Tokens: tokens, Logger: log})
	if err != nil {
		return rep, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return rep, err
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(ln)
	defer hs.Close()
	runCtx, stopRun := context.WithCancel(ctx)
	runDone := make(chan struct{})
	go func() { defer close(runDone); srv.Run(runCtx) }()
	defer func() { stopRun(); <-runDone }()
	base := "http://" + ln.Addr().String()
	auth := "Bearer " + secret

	if !c.SkipQueries {
		if err := apiQueries(ctx, c, db, base, auth, sd, &rep); err != nil {
			return rep, err
		}
	}
	if !c.SkipLive {
		lr, err := apiLive(ctx, c, rdb, keys, base, auth, sd)
		rep.Live = &lr
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x5eed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// seed is what the queries need to know of the seeded events.
type seed struct {
	end       time.Time // the newest event's created
	span      time.Duration
	topics    []string // by frequency rank
	customers int
}

// seedTopics picks n topics of the catalogue, spread over it; the order is
// their frequency rank (Zipf).
func seedTopics(n int) []string {
	all := dwolla.Topics()
	sort.Strings(all)
	n = min(n, len(all))
	out := make([]string, n)
	for i := range n {
		out[i] = all[i*len(all)/n]
	}
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// uuidOf writes a UUID-shaped (version 4) id of the 128 bits hi, lo.
func uuidOf(dst []byte, hi, lo uint64) []byte {
	var b [16]byte
	for i := range 8 {
		b[i], b[8+i] = byte(hi>>(56-8*i)), byte(lo>>(56-8*i))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var h [32]byte
	hex.Encode(h[:], b[:])
	dst = append(dst, h[0:8]...)
	dst = append(dst, '-')
	dst = append(dst, h[8:12]...)
	dst = append(dst, '-')
	dst = append(dst, h[12:16]...)
	dst = append(dst, '-')
	dst = append(dst, h[16:20]...)
	dst = append(dst, '-')
	return append(dst, h[20:32]...)
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// customerID is the id of seeded customer i.
func customerID(i int) string {
	return string(uuidOf(nil, splitmix(uint64(i)), splitmix(uint64(i)^0xc0ffee)))
}

// resourceTypeOf is the resource a topic's events link to.
func resourceTypeOf(topic string) string {
	for _, m := range []struct{ sub, typ string }{
		{"transfer", "transfers"}, {"funding_source", "funding-sources"}, {"microdeposit", "funding-sources"},
		{"beneficial_owner", "beneficial-owners"}, {"document", "documents"}, {"mass_payment", "mass-payments"},
		{"label", "labels"}, {"exchange", "exchanges"}, {"statement", "statements"},
	} {
		if strings.Contains(topic, m.sub) {
			return m.typ
		}
	}
	return "customers"
}

const seedTable = "bench_api_seed"

// seedAPI makes c.Schema hold c.Events events and the window aggregates of
// their last 25 hours, or reuses it when it already does.
func seedAPI(ctx context.Context, admin *pgxpool.Pool, c APIConfig, rep *APIReport) (seed, error) {
	out := c.Out
	sd := seed{span: c.Span, topics: seedTopics(c.Topics), customers: c.Customers}
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = $1)`, c.Schema).Scan(&exists); err != nil {
		return sd, err
	}
	if exists {
		var marked bool
		if err := admin.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, c.Schema+"."+seedTable).Scan(&marked); err != nil {
			return sd, err
		}
		if !marked {
			return sd, fmt.Errorf("schema %s exists and was not made by bench api (no %s table): pass another --schema", c.Schema, seedTable)
		}
		var events, spanS int64
		var topics, customers int
		var complete bool
		var took float64
		err := admin.QueryRow(ctx, `SELECT events, span_s, topics, customers, end_at, complete, seed_s FROM `+c.Schema+`.`+seedTable).
			Scan(&events, &spanS, &topics, &customers, &sd.end, &complete, &took)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return sd, err
		}
		if err == nil && complete && !c.Reseed && events == int64(c.Events) && spanS == int64(c.Span/time.Second) &&
			topics == c.Topics && customers == c.Customers {
			fmt.Fprintf(out, "reusing schema %s: %d events seeded earlier (in %s), newest created %s\n",
				c.Schema, events, (time.Duration(took) * time.Second).Round(time.Second), sd.end.UTC().Format(time.RFC3339))
			rep.SeedTook = time.Duration(took * float64(time.Second))
			return sd, nil
		}
		fmt.Fprintf(out, "schema %s holds another or an unfinished seed: dropping it\n", c.Schema)
		if _, err := admin.Exec(ctx, "DROP SCHEMA "+c.Schema+" CASCADE"); err != nil {
			return sd, err
		}
	}
	rep.Seeded = true
	t0 := time.Now()
	db, err := newSchema(ctx, admin, c.DatabaseURL, c.Schema)
	if err != nil {
		return sd, err
	}
	defer db.Close()
	sd.end = t0.UTC().Truncate(time.Microsecond)
	_, err = db.Exec(ctx, `CREATE TABLE `+seedTable+` (events bigint, span_s bigint, topics int, customers int, end_at timestamptz,
		complete bool, seed_s double precision, seeded_at timestamptz DEFAULT now())`)
	if err == nil {
		_, err = db.Exec(ctx, `INSERT INTO `+seedTable+` VALUES ($1, $2, $3, $4, $5, false, 0)`,
			c.Events, int64(c.Span/time.Second), c.Topics, c.Customers, sd.end)
	}
	if err != nil {
		return sd, err
	}
	step := func(name string, start time.Time) {
		s := fmt.Sprintf("%-44s %8s", name, time.Since(start).Round(100*time.Millisecond))
		rep.SeedSteps = append(rep.SeedSteps, s)
		fmt.Fprintln(out, "  "+s)
	}
	fmt.Fprintf(out, "seeding schema %s: %d events over %s ending %s, %d topics, %d customers\n",
		c.Schema, c.Events, c.Span, sd.end.Format(time.RFC3339), len(sd.topics), c.Customers)

	// The indexes are built after the COPY (the same definitions, read
	// back from the catalogue): much faster than maintaining them row by row.
	t := time.Now()
	var defs []string
	rows, err := db.Query(ctx, `SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'events' AND indexname <> 'events_pkey'`, c.Schema)
	if err == nil {
		defs, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		return sd, err
	}
	for _, d := range defs {
		name := strings.Fields(strings.SplitN(d, " ON ", 2)[0])
		if _, err := db.Exec(ctx, "DROP INDEX "+name[len(name)-1]); err != nil {
			return sd, err
		}
	}
	if _, err := db.Exec(ctx, "ALTER TABLE events DROP CONSTRAINT events_pkey"); err != nil {
		return sd, err
	}

	const workers = 2
	var copied atomic.Int64
	var bodyBytes atomic.Int64
	errs := make(chan error, workers)
	progressDone := make(chan struct{})
	go func() {
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-progressDone:
				return
			case <-tick.C:
				n := copied.Load()
				fmt.Fprintf(out, "    copied %d of %d (%.0f/s)\n", n, c.Events, float64(n)/time.Since(t).Seconds())
			}
		}
	}()
	for w := range workers {
		lo, hi := w*c.Events/workers, (w+1)*c.Events/workers
		go func() { errs <- copyEvents(ctx, db, c, &sd, w, lo, hi, &copied, &bodyBytes) }()
	}
	for range workers {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	close(progressDone)
	if err != nil {
		return sd, fmt.Errorf("seed events: %w", err)
	}
	step(fmt.Sprintf("COPY %d events (%d B body mean), 2 conns", c.Events, bodyBytes.Load()/int64(max(c.Events, 1))), t)

	t = time.Now()
	jobs := append([]string{"ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (id)"}, defs...)
	jobCh := make(chan string, len(jobs))
	for _, j := range jobs {
		jobCh <- j
	}
	close(jobCh)
	for range workers {
		go func() {
			errs <- db.AcquireFunc(ctx, func(conn *pgxpool.Conn) error {
				if _, err := conn.Exec(ctx, "SET maintenance_work_mem = '512MB'"); err != nil {
					return err
				}
				for j := range jobCh {
					if _, err := conn.Exec(ctx, j); err != nil {
						return fmt.Errorf("%s: %w", j, err)
					}
				}
				_, err := conn.Exec(ctx, "RESET maintenance_work_mem")
				return err
			})
		}()
	}
	for range workers {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		return sd, err
	}
	step(fmt.Sprintf("primary key and %d indexes built", len(defs)), t)

	t = time.Now()
	if _, err := db.Exec(ctx, "ANALYZE events"); err != nil {
		return sd, err
	}
	step("ANALYZE events", t)

	// The window aggregates of the last 25 hours, by the real refold (what
	// `hookstream refold` runs), an hour per transaction.
	t = time.Now()
	fold, err := windows.NewFold(windows.Config{})
	if err != nil {
		return sd, err
	}
	from := windows.Start(sd.end.Add(-25*time.Hour), time.Hour)
	var folded int64
	for h := from; !h.After(sd.end); h = h.Add(time.Hour) {
		r, err := process.Refold(ctx, db, []process.Fold{fold}, h, h.Add(time.Hour), nil)
		if err != nil {
			return sd, fmt.Errorf("refold %s: %w", h.Format(time.RFC3339), err)
		}
		folded += r.Events
	}
	var aggRows int64
	if err := db.QueryRow(ctx, "SELECT count(*) FROM window_aggs").Scan(&aggRows); err != nil {
		return sd, err
	}
	step(fmt.Sprintf("refold of the last 25 h: %d events, %d window rows", folded, aggRows), t)
	t = time.Now()
	if _, err := db.Exec(ctx, "ANALYZE window_aggs"); err != nil {
		return sd, err
	}
	step("ANALYZE window_aggs", t)
	var dbSize string
	db.QueryRow(ctx, "SELECT pg_size_pretty(pg_total_relation_size('events'))").Scan(&dbSize)
	rep.SeedTook = time.Since(t0)
	if _, err := db.Exec(ctx, `UPDATE `+seedTable+` SET complete = true, seed_s = $1`, rep.SeedTook.Seconds()); err != nil {
		return sd, err
	}
	fmt.Fprintf(out, "seeded in %s (events table with its indexes: %s)\n", rep.SeedTook.Round(time.Second), dbSize)
	return sd, nil
}

// copyEvents copies events lo..hi-1 (in created order) over one connection.
func copyEvents(ctx context.Context, db *pgxpool.Pool, c APIConfig, sd *seed, worker, lo, hi int, copied, bodyBytes *atomic.Int64) error {
	r := rand.New(rand.NewPCG(uint64(worker)+7, uint64(time.Now().UnixNano())))
	zipf := rand.NewZipf(r, 1.1, 1, uint64(len(sd.topics)-1))
	type topicInfo struct {
		name, family, outcome, rtype string
		terminal, customer           bool
	}
	infos := make([]topicInfo, len(sd.topics))
	for i, t := range sd.topics {
		ti, _ := dwolla.LookupTopic(t)
		infos[i] = topicInfo{t, ti.Family, string(ti.Outcome), resourceTypeOf(t), ti.Terminal, ti.Customer}
	}
	start := sd.end.Add(-sd.span)
	step := float64(sd.span) / float64(max(c.Events-1, 1))
	const account = "0ee84069-47c5-455c-b425-633523291dc3"
	var idb, ridb, corrb []byte
	i := lo
	row := make([]any, 13)
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i >= hi {
			return nil, nil
		}
		if (i-lo)%10_000 == 0 && i > lo {
			copied.Add(10_000)
		}
		created := start.Add(time.Duration(float64(i) * step))
		if i == c.Events-1 {
			created = sd.end
		}
		i++
		ti := &infos[zipf.Uint64()]
		idb = uuidOf(idb[:0], r.Uint64(), r.Uint64())
		id := string(idb)
		var cust string
		if ti.customer {
			cust = customerID(r.IntN(max(sd.customers, 1)))
		}
		rid := cust
		if ti.rtype != "customers" || rid == "" {
			ridb = uuidOf(ridb[:0], r.Uint64(), r.Uint64())
			rid = string(ridb)
		}
		lag := 150*time.Millisecond + time.Duration(r.ExpFloat64()*float64(400*time.Millisecond))
		if r.IntN(100) == 0 {
			lag += time.Duration(r.Int64N(int64(time.Hour))) // a retried delivery
		}
		received := created.Add(lag)
		stored := received.Add(20*time.Millisecond + time.Duration(r.Int64N(int64(60*time.Millisecond))))
		source := "webhook"
		if r.IntN(50) == 0 {
			source = "reconcile"
		}
		var corr any
		if ti.rtype == "transfers" && r.IntN(10) < 3 {
			corrb = uuidOf(corrb[:0], r.Uint64(), r.Uint64())
			corr = string(corrb)
		}
		body := make([]byte, 0, 560)
		body = append(body, `{"_links":{"self":{"href":"https://api.dwolla.com/events/`...)
		body = append(body, id...)
		body = append(body, `"},"account":{"href":"https://api.dwolla.com/accounts/`...)
		body = append(body, account...)
		body = append(body, `"},"resource":{"href":"https://api.dwolla.com/`...)
		body = append(body, ti.rtype...)
		body = append(body, '/')
		body = append(body, rid...)
		body = append(body, '"', '}')
		if cust != "" {
			body = append(body, `,"customer":{"href":"https://api.dwolla.com/customers/`...)
			body = append(body, cust...)
			body = append(body, '"', '}')
		}
		body = append(body, `},"id":"`...)
		body = append(body, id...)
		body = append(body, `","resourceId":"`...)
		body = append(body, rid...)
		body = append(body, `","topic":"`...)
		body = append(body, ti.name...)
		body = append(body, `","timestamp":"`...)
		body = created.UTC().AppendFormat(body, "2006-01-02T15:04:05.000Z")
		body = append(body, `","created":"`...)
		body = created.UTC().AppendFormat(body, "2006-01-02T15:04:05.000Z")
		body = append(body, `"}`...)
		bodyBytes.Add(int64(len(body)))
		row[0], row[1], row[2], row[3], row[4] = id, ti.name, nullIfEmpty(ti.family), nullIfEmpty(ti.outcome), ti.terminal
		row[5], row[6], row[7], row[8] = ti.rtype, rid, nullIfEmpty(cust), corr
		row[9], row[10], row[11], row[12] = created, received, stored, source
		return append(row[:13:13], body), nil
	})
	_, err := db.CopyFrom(ctx, pgx.Identifier{"events"}, []string{"id", "topic", "family", "outcome", "terminal", "resource_type",
		"resource_id", "customer_id", "correlation_id", "created", "received_at", "stored_at", "source", "body"}, src)
	copied.Add(int64((i - lo) % 10_000))
	return err
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// eventsCursor makes a cursor of GET /api/v1/events as the API encodes
// one (checked against a real one before it is used).
func eventsCursor(created time.Time, id string) string {
	type at struct {
		C time.Time `json:"c"`
		I string    `json:"i"`
	}
	b, _ := json.Marshal(struct {
		K  string `json:"k"`
		At at     `json:"at"`
	}{"events", at{created, id}})
	return base64.RawURLEncoding.EncodeToString(b)
}

// queryKind is one kind of request: each call gives the API's query
// string and the direct call with the same parameters.
type queryKind struct {
	name   string
	path   string
	target time.Duration
	next   func(r *rand.Rand) (query string, direct func(ctx context.Context) (int, error))
	// count reads how many items an API answer holds, for the check.
	count func(body []byte) (int, error)
}

func apiQueries(ctx context.Context, c APIConfig, db *pgxpool.Pool, base, auth string, sd seed, rep *APIReport) error {
	out := c.Out
	client := Client(2)
	client.Timeout = time.Minute
	get := func(path, query string) ([]byte, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path+"?"+query, nil)
		req.Header.Set("Authorization", auth)
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET %s?%s: %d %s", path, query, resp.StatusCode, b)
		}
		return b, err
	}

	// The cursor format, checked against one the API gave.
	b, err := get("/api/v1/events", "limit=1")
	if err != nil {
		return err
	}
	var page struct {
		Events []struct {
			ID      string    `json:"id"`
			Created time.Time `json:"created"`
		} `json:"events"`
		NextCursor *string `json:"next_cursor"`
	}
	if err := json.Unmarshal(b, &page); err != nil || len(page.Events) != 1 || page.NextCursor == nil {
		return fmt.Errorf("first events page: %v: %s", err, b)
	}
	if got := eventsCursor(page.Events[0].Created, page.Events[0].ID); got != *page.NextCursor {
		return fmt.Errorf("the API's events cursor is no longer encoded as this benchmark makes deep cursors (got %s, made %s): update eventsCursor", *page.NextCursor, got)
	}

	cfg := windows.Config{}
	countEvents := func(b []byte) (int, error) {
		var p struct {
			Events []json.RawMessage `json:"events"`
		}
		err := json.Unmarshal(b, &p)
		return len(p.Events), err
	}
	countPoints := func(b []byte) (int, error) {
		var p struct {
			Points []json.RawMessage `json:"points"`
		}
		err := json.Unmarshal(b, &p)
		return len(p.Points), err
	}
	// listed runs ListEvents as the API does: one row more than the page,
	// to tell whether there is a next one.
	listed := func(f store.EventFilter) func(ctx context.Context) (int, error) {
		return func(ctx context.Context) (int, error) {
			f.Limit = 101
			evs, err := store.ListEvents(ctx, db, f)
			return min(len(evs), 100), err
		}
	}
	start := sd.end.Add(-sd.span)
	deep := func(r *rand.Rand) time.Time {
		return start.Add(time.Duration(r.Int64N(int64(sd.span)))).UTC().Truncate(time.Microsecond)
	}
	topic := func(r *rand.Rand) string { return sd.topics[r.IntN(len(sd.topics))] }
	kinds := []queryKind{
		{name: fmt.Sprintf("metrics: 1m count by topic, 24 h (%d topics)", len(sd.topics)), path: "/api/v1/metrics", target: 50 * time.Millisecond, count: countPoints,
			next: func(r *rand.Rand) (string, func(context.Context) (int, error)) {
				to := windows.Start(sd.end, time.Minute).Add(-time.Duration(r.IntN(60)) * time.Minute)
				from := to.Add(-24 * time.Hour)
				q := url.Values{"window": {"1m"}, "metric": {"count"}, "group_by": {"topic"}, "from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}
				return q.Encode(), func(ctx context.Context) (int, error) {
					res, err := windows.QueryMetrics(ctx, db, cfg, windows.MetricQuery{Window: time.Minute, Metric: windows.MetricCount, GroupBy: windows.DimTopic, From: from, To: to})
					return len(res.Points), err
				}
			}},
		{name: "events: newest page, limit=100", path: "/api/v1/events", target: 20 * time.Millisecond, count: countEvents,
			next: func(r *rand.Rand) (string, func(context.Context) (int, error)) {
				return "limit=100", listed(store.EventFilter{})
			}},
		{name: "events: topic=<one of 50>, limit=100", path: "/api/v1/events", target: 20 * time.Millisecond, count: countEvents,
			next: func(r *rand.Rand) (string, func(context.Context) (int, error)) {
				t := topic(r)
				return "limit=100&topic=" + t, listed(store.EventFilter{Topics: []string{t}})
			}},
		{name: "events: customer=<random>, limit=100", path: "/api/v1/events", target: 20 * time.Millisecond, count: countEvents,
			next: func(r *rand.Rand) (string, func(context.Context) (int, error)) {
				cu := customerID(r.IntN(max(sd.customers, 1)))
				return "limit=100&customer=" + cu, listed(store.EventFilter{CustomerID: cu})
			}},
		{name: "events: deep page (cursor at a random time)", path: "/api/v1/events", target: 20 * time.Millisecond, count: countEvents,
			next: func(r *rand.Rand) (string, func(context.Context) (int, error)) {
				at := deep(r)
				return "limit=100&cursor=" + eventsCursor(at, ""), listed(store.EventFilter{After: &store.EventKey{Created: at}})
			}},
		{name: "events: topic=<one of 50>, deep page", path: "/api/v1/events", target: 20 * time.Millisecond, count: countEvents,
			next: func(r *rand.Rand) (string, func(context.Context) (int, error)) {
				t, at := topic(r), deep(r)
				return "limit=100&topic=" + t + "&cursor=" + eventsCursor(at, ""), listed(store.EventFilter{Topics: []string{t}, After: &store.EventKey{Created: at}})
			}},
	}
	fmt.Fprintf(out, "\nqueries: %d measured requests per kind after %d warm-up ones, one at a time; each through the API (HTTP on loopback, bearer token, answer read to its end) and by calling the query code directly (same parameters; ListEvents with limit 101 as the API asks), alternating which goes first\n",
		c.Requests, c.Warmup)
	r := rand.New(rand.NewPCG(42, 42))
	for ki, k := range kinds {
		stop := func() {}
		if ki == 0 && c.CPUProfile != "" {
			var err error
			if stop, err = startCPUProfile(c.CPUProfile); err != nil {
				return err
			}
		}
		qt := QueryTimes{Name: k.name, Target: k.target}
		var bytesSum int64
		for i := range c.Warmup + c.Requests {
			query, direct := k.next(r)
			var apiTook, directTook time.Duration
			var body []byte
			var n int
			callAPI := func() error {
				t := time.Now()
				var err error
				body, err = get(k.path, query)
				apiTook = time.Since(t)
				return err
			}
			callDirect := func() error {
				t := time.Now()
				var err error
				n, err = direct(ctx)
				directTook = time.Since(t)
				return err
			}
			first, second := callAPI, callDirect
			if i%2 == 1 {
				first, second = callDirect, callAPI
			}
			if err := first(); err != nil {
				return fmt.Errorf("%s: %w", k.name, err)
			}
			if err := second(); err != nil {
				return fmt.Errorf("%s: %w", k.name, err)
			}
			if i < c.Warmup {
				got, err := k.count(body)
				if err != nil || got != n {
					return fmt.Errorf("%s: the API's answer to %s holds %d items (%v), the direct call's %d", k.name, query, got, err, n)
				}
				continue
			}
			qt.API = append(qt.API, apiTook)
			qt.Direct = append(qt.Direct, directTook)
			bytesSum += int64(len(body))
		}
		stop()
		slices.Sort(qt.API)
		slices.Sort(qt.Direct)
		qt.Bytes = bytesSum / int64(max(len(qt.API), 1))
		rep.Queries = append(rep.Queries, qt)
		printQuery(out, qt)
	}
	return nil
}

func quantile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(p*float64(len(sorted)-1)+0.5)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func passMiss(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

func printQuery(out io.Writer, q QueryTimes) {
	fmt.Fprintf(out, "\n%s (answer %s)\n", q.Name, fmtBytes(q.Bytes))
	fmt.Fprintf(out, "  %-14s %8s %10s %10s %10s %10s\n", "", "requests", "p50", "p90", "p99", "max")
	row := func(name string, v []time.Duration) {
		fmt.Fprintf(out, "  %-14s %8d %10s %10s %10s %10s\n", name, len(v), ms(quantile(v, .5)), ms(quantile(v, .9)), ms(quantile(v, .99)), ms(v[len(v)-1]))
	}
	row("API", q.API)
	row("direct", q.Direct)
	ratio := func(p float64) float64 { return float64(quantile(q.API, p)) / float64(quantile(q.Direct, p)) }
	fmt.Fprintf(out, "  %-14s %8s %9.2fx %9.2fx %9.2fx\n", "API / direct", "", ratio(.5), ratio(.9), ratio(.99))
	p99 := quantile(q.API, .99)
	fmt.Fprintf(out, "  target API p99 ≤ %s: %s (%s); API cost ≤ 1.3x direct: p50 %s (%.2fx), p99 %s (%.2fx)\n",
		ms(q.Target), passMiss(p99 <= q.Target), ms(p99), passMiss(ratio(.5) <= 1.3), ratio(.5), passMiss(ratio(.99) <= 1.3), ratio(.99))
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// Histogram counts durations in 100 µs buckets up to 10 s (more go in the
// last).
type Histogram struct {
	Buckets []uint64
	Max     time.Duration
	N       uint64
}

const histStep, histBuckets = 100 * time.Microsecond, 100_000

func newHistogram() *Histogram { return &Histogram{Buckets: make([]uint64, histBuckets)} }

func (h *Histogram) add(d time.Duration) {
	i := int(d / histStep)
	if d < 0 {
		i = 0
	}
	h.Buckets[min(i, histBuckets-1)]++
	h.Max = max(h.Max, d)
	h.N++
}

func (h *Histogram) merge(o *Histogram) {
	for i, n := range o.Buckets {
		h.Buckets[i] += n
	}
	h.Max = max(h.Max, o.Max)
	h.N += o.N
}

// Quantile is the upper bound of the bucket holding quantile p.
func (h *Histogram) Quantile(p float64) time.Duration {
	if h.N == 0 {
		return 0
	}
	want := uint64(p*float64(h.N-1)) + 1
	var seen uint64
	for i, n := range h.Buckets {
		seen += n
		if seen >= want {
			return min(time.Duration(i+1)*histStep, h.Max)
		}
	}
	return h.Max
}

// liveClient is one SSE client's tally.
type liveClient struct {
	hist     *Histogram
	got      int64
	repeated int64
	ended    bool
	err      error
}

func apiLive(ctx context.Context, c APIConfig, rdb redis.UniversalClient, keys stream.Keys, base, auth string, sd seed) (LiveResult, error) {
	out := c.Out
	res := LiveResult{Clients: c.LiveClients}
	total := int64(c.LiveRate * c.LiveDuration.Seconds())
	fmt.Fprintf(out, "\nlive feed: %d SSE clients on GET /api/v1/live?types=event, %.0f events/s announced on %s for %s in a batch every %s (%d events)\n",
		c.LiveClients, c.LiveRate, keys.Stored(), c.LiveDuration, c.LiveBatchEvery, total)
	tr := &http.Transport{MaxIdleConnsPerHost: c.LiveClients, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	cctx, stopClients := context.WithCancel(ctx)
	defer stopClients()
	runTag := uint32(time.Now().UnixNano())
	clients := make([]*liveClient, c.LiveClients)
	var connected, finished sync.WaitGroup
	var done atomic.Int64 // clients that got every event
	for i := range clients {
		lc := &liveClient{hist: newHistogram()}
		clients[i] = lc
		connected.Add(1)
		finished.Add(1)
		go func() {
			defer finished.Done()
			once := sync.OnceFunc(connected.Done)
			defer once()
			lc.err = readLive(cctx, hc, base, auth, lc, total, once, &done)
			if cctx.Err() == nil {
				lc.ended = true
			}
		}()
	}
	connected.Wait()
	for _, lc := range clients {
		if lc.err != nil {
			return res, fmt.Errorf("live client: %w", lc.err)
		}
	}
	// Every client has its stream's first bytes; the hub registers it
	// right after them. Give it a moment.
	time.Sleep(500 * time.Millisecond)
	dropped0 := metrics.GetOrCreateCounter(`hookstream_api_live_dropped_total`).Get()
	busy0, total0 := MachineCPU()

	r := rand.New(rand.NewPCG(uint64(runTag), 9))
	var idb []byte
	start := time.Now()
	tick := time.NewTicker(c.LiveBatchEvery)
	var sent int64
	batch := make([]process.StoredEvent, 0, 1024)
	for sent < total {
		select {
		case <-ctx.Done():
			tick.Stop()
			return res, ctx.Err()
		case <-tick.C:
		}
		due := min(total, int64(c.LiveRate*time.Since(start).Seconds()))
		if due <= sent {
			continue
		}
		now := time.Now().UTC()
		batch = batch[:0]
		for seq := sent; seq < due; seq++ {
			idb = append(idb[:0], fmt.Sprintf("%08x-0000-4000-8000-%012x", runTag, seq)...)
			t := sd.topics[r.IntN(len(sd.topics))]
			ti, _ := dwolla.LookupTopic(t)
			e := process.StoredEvent{ID: string(idb), Topic: t, Created: now.Add(-300 * time.Millisecond), Received: now,
				ResourceType: resourceTypeOf(t), ResourceID: string(uuidOf(nil, r.Uint64(), r.Uint64())), Source: "webhook"}
			if ti.Customer {
				e.CustomerID = customerID(r.IntN(max(sd.customers, 1)))
			}
			batch = append(batch, e)
		}
		b, err := json.Marshal(batch)
		if err != nil {
			return res, err
		}
		if _, err := stream.AnnounceWithin(ctx, rdb, keys.Stored(), 2*time.Minute, []string{process.StoredField, string(b)}); err != nil {
			return res, err
		}
		res.Batches++
		sent = due
	}
	tick.Stop()
	res.Sent = sent
	sendTook := time.Since(start)
	// Wait for every client to get everything (or to fall silent).
	deadline := time.Now().Add(15 * time.Second)
	for done.Load() < int64(c.LiveClients) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	res.Took = time.Since(start)
	busy1, total1 := MachineCPU()
	if total1 > total0 {
		res.MachineCPU = float64(busy1-busy0) / float64(total1-total0)
	}
	res.Dropped = int64(metrics.GetOrCreateCounter(`hookstream_api_live_dropped_total`).Get() - dropped0)
	stopClients()
	finished.Wait()
	h := newHistogram()
	res.MinGot = -1
	for _, lc := range clients {
		h.merge(lc.hist)
		if res.MinGot < 0 || lc.got < res.MinGot {
			res.MinGot = lc.got
		}
		res.MaxGot = max(res.MaxGot, lc.got)
		res.Missing += total - (lc.got - lc.repeated) // skipped, or never arrived
		res.Repeated += lc.repeated
		if lc.ended {
			res.Ended++
		}
	}
	res.Latency = *h
	fmt.Fprintf(out, "  sent %d events in %d entries in %s (%.0f/s); %d clients got %d..%d events each (%d deliveries)\n",
		res.Sent, res.Batches, sendTook.Round(time.Millisecond), float64(res.Sent)/sendTook.Seconds(), c.LiveClients, res.MinGot, res.MaxGot, h.N)
	fmt.Fprintf(out, "  %-22s %12s %10s %10s %10s %10s\n", "", "deliveries", "p50", "p90", "p99", "max")
	fmt.Fprintf(out, "  %-22s %12d %10s %10s %10s %10s\n", "announce → client", h.N, ms(h.Quantile(.5)), ms(h.Quantile(.9)), ms(h.Quantile(.99)), ms(h.Max))
	fmt.Fprintf(out, "  missing %d, repeated %d, streams ended early %d, hub dropped %d; machine CPU %.0f%% busy\n",
		res.Missing, res.Repeated, res.Ended, res.Dropped, 100*res.MachineCPU)
	all := res.Missing == 0 && res.Repeated == 0 && res.Ended == 0 && res.Dropped == 0 && res.MinGot == res.Sent
	fmt.Fprintf(out, "  target delivery p99 ≤ 250 ms: %s (%s); nothing dropped: %s\n", passMiss(h.Quantile(.99) <= 250*time.Millisecond), ms(h.Quantile(.99)), passMiss(all))
	return res, nil
}

// readLive reads one client's stream until ctx ends, tallying the event
// messages into lc. connected is called once the stream's first line is in.
func readLive(ctx context.Context, hc *http.Client, base, auth string, lc *liveClient, total int64, connected func(), done *atomic.Int64) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/live?types=event", nil)
	req.Header.Set("Authorization", auth)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET /api/v1/live: %d %s", resp.StatusCode, b)
	}
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	if _, err := br.ReadSlice('\n'); err != nil {
		return err
	}
	connected()
	var next int64
	idKey, recvKey := []byte(`"id":"`), []byte(`"received":"`)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) {
				return nil
			}
			return nil // the stream ended: counted as ended by the caller
		}
		if !bytes.HasPrefix(line, []byte("data: ")) {
			continue
		}
		now := time.Now()
		i, j := bytes.Index(line, idKey), bytes.Index(line, recvKey)
		if i < 0 || j < 0 {
			continue
		}
		id := line[i+len(idKey):]
		id = id[:bytes.IndexByte(id, '"')]
		rv := line[j+len(recvKey):]
		rv = rv[:bytes.IndexByte(rv, '"')]
		sent, err := time.Parse(time.RFC3339Nano, string(rv))
		if err != nil {
			continue
		}
		seq, err := strconv.ParseInt(string(id[len(id)-12:]), 16, 64)
		if err != nil {
			continue
		}
		lc.hist.add(now.Sub(sent))
		lc.got++
		switch {
		case seq == next:
			next++
		case seq > next:
			next = seq + 1
		default:
			lc.repeated++
		}
		if next == total && lc.got >= total {
			done.Add(1)
			next++ // count once
		}
	}
}
