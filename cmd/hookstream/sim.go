package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/hookstream/hookstream/sim"
)

func simCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream sim", flag.ContinueOnError)
	var cm common
	cm.register(fs)
	c := sim.RunConfig{Out: os.Stdout}
	var secrets, start string
	fs.StringVar(&c.Send.URL, "url", "http://127.0.0.1:8080/webhooks/dwolla", "receiver to deliver the webhooks to")
	fs.StringVar(&secrets, "webhook-secrets", "dev-secret", "comma-separated webhook secrets; the FIRST one signs (the same setting the receiver reads)")
	fs.IntVar(&c.Generate.Customers, "customers", 200, "customers to take through their lifecycles (about 12 events each)")
	fs.Int64Var(&c.Generate.Seed, "seed", 1, "random seed: the same seed gives the same ids, topics, paths and time offsets")
	fs.StringVar(&start, "start", "", "created time of the first event, RFC 3339 (default now); set it too for byte-identical bodies")
	fs.DurationVar(&c.Generate.Span, "span", 0, "customers' start times are spread over this much event time (0 = one second per customer); ignored with --continuous and a --rate")
	fs.DurationVar(&c.Generate.StepDelay, "step-delay", time.Minute, "mean event-time gap between two steps of one lifecycle")
	fs.Float64Var(&c.Send.Rate, "rate", 1000, "target first deliveries per second, open loop (0 = as fast as --concurrency allows)")
	fs.IntVar(&c.Send.Concurrency, "concurrency", 10, "most requests in flight (Dwolla sends bursts of 10)")
	fs.Float64Var(&c.Send.Duplicates, "duplicates", 0, "fraction of events delivered a second time, later (0..1)")
	fs.Float64Var(&c.Send.Reorder, "reorder", 0, "fraction of events delivered late, after events created after them (0..1)")
	fs.DurationVar(&c.Send.ReorderDelay, "reorder-delay", time.Second, "longest extra delay of a reordered or duplicate delivery")
	fs.Float64Var(&c.Send.TimeScale, "time-scale", 3600, "divides Dwolla's retry gaps (15m 45m 2h 3h 6h 12h 24h 24h); 3600 makes 15m 0.25s, 1 is Dwolla's real 72h schedule")
	fs.StringVar(&c.Truth, "truth", "", "write the ground truth to this file (one JSON line per unique event) and the lifecycle paths to FILE.paths.json")
	fs.StringVar(&c.Verify, "verify", "none", "after sending, compare the ground truth with: none, streams (Redis) or events (PostgreSQL table)")
	fs.DurationVar(&c.VerifyTimeout, "verify-timeout", 30*time.Second, "how long --verify waits for the store to match before it reports a mismatch")
	fs.Func("incident", "inject an incident, KIND@OFFSET/DURATION from the first event's time (repeatable): failure-spike, volume-drop, lag-surge (delays delivery: needs --continuous), verification-stall; for example failure-spike@2h/30m", func(s string) error {
		in, err := sim.ParseIncident(s)
		if err == nil {
			c.Generate.Incidents = append(c.Generate.Incidents, in)
		}
		return err
	})
	fs.Float64Var(&c.Send.Drop, "drop", 0, "fraction of events never delivered (0..1), chosen by a hash of the event id and --seed; the fake API (--api-addr) still has them")
	fs.StringVar(&c.APIAddr, "api-addr", "", "serve a fake Dwolla API (token, events, webhook subscription and its webhooks, retries, resources) from the ground truth on this address, e.g. 127.0.0.1:9090, and keep serving after the summary until Ctrl-C")
	fs.StringVar(&c.API.Key, "api-key", sim.DefaultAPIKey, "client key the fake API accepts at POST /token (the client reads HOOKSTREAM_DWOLLA_KEY)")
	fs.StringVar(&c.API.Secret, "api-secret", sim.DefaultAPISecret, "client secret the fake API accepts at POST /token (the client reads HOOKSTREAM_DWOLLA_SECRET)")
	fs.Float64Var(&c.API.Faults.TooManyRequests, "api-429", 0, "fraction of fake API requests answered 429 TooManyRequests (0..1)")
	fs.Float64Var(&c.API.Faults.ServerErrors, "api-5xx", 0, "fraction of fake API requests answered 500 or 503 (0..1)")
	fs.DurationVar(&c.API.Faults.Latency, "api-latency", 0, "added before every answer of the fake API")
	fs.BoolVar(&c.Continuous, "continuous", false, "generate and send without end, each event when its created time comes, until Ctrl-C")
	return &ffcli.Command{
		Name:       "sim",
		ShortUsage: "hookstream sim [flags]",
		ShortHelp:  "send simulated, signed Dwolla webhooks and check that hookstream stored each once",
		LongHelp: `sim stands in for Dwolla. It plays realistic lifecycles for --customers
customers (verification with its retry/KBA/document/suspended paths, funding
sources with micro-deposits, bank transfers that complete, fail, are cancelled
or fail after completing, customer transfer legs, mass payments), signs every
body with the first of --webhook-secrets, and POSTs it to --url at --rate with
at most --concurrency requests in flight. --duplicates and --reorder deliver a
fraction of events twice or late, as Dwolla may. Any non-2xx answer (3xx
included) or network error is retried on Dwolla's schedule of 8 retries over
72h, compressed by --time-scale.

--incident injects trouble into the traffic, in event time from the first
event: failure-spike (80% of the transfers created in it fail), volume-drop
(nothing happens in it; what would have, happens just after), lag-surge (the
webhooks of events created in it arrive up to its length, at most 10
minutes, late; with --continuous, where delivery follows event time) and
verification-stall (customer verification makes no progress in it). The
ground truth says when each ran (--truth FILE writes FILE.incidents.json).

--seed makes the traffic reproducible; --truth writes what was generated, and
--verify compares it with the Redis streams or the events table, polling up
to --verify-timeout, then prints missing / duplicated / unexpected counts and
exits non-zero on any difference. Verify against a fresh --namespace: events
of earlier runs count as unexpected.

--drop never delivers a fraction of the events (the same ones for the same
--seed). With --api-addr the run also serves a fake Dwolla API from its
ground truth: POST /token (--api-key, --api-secret), GET /events, the
webhook subscription with every webhook and attempt (a dropped event shows
one attempt answered 503), POST /webhooks/{id}/retries (sends the webhook
again, signed) and the customers, funding sources and transfers with their
latest status. The event bodies' links then point at it. After the summary
it keeps serving until Ctrl-C, so a reconciliation can find what --drop
withheld. --api-429, --api-5xx and --api-latency make it misbehave.

With --continuous it generates without end and delivers each event when its
created time comes, printing progress every 5 seconds until Ctrl-C. New
customers start at a pace that yields --rate events per second once the first
lifecycles have run their course (a warm-up of some 20 --step-delay).

Examples:
  # 500 customers with 20% duplicate and 20% late deliveries, then check the streams
  hookstream sim --customers 500 --duplicates 0.2 --reorder 0.2 --verify streams

  # reproducible run with its ground truth on disk
  hookstream sim --seed 7 --start 2025-06-02T14:00:00Z --truth /tmp/truth.jsonl

  # withhold 1% of the webhooks and serve the fake API to recover them from
  hookstream sim --drop 0.01 --api-addr 127.0.0.1:9090

  # steady live traffic for dashboards
  hookstream sim --continuous --rate 50 --step-delay 5s

  # a day with a failure spike two hours in, for the anomaly detectors
  hookstream sim --customers 2000 --span 24h --incident failure-spike@2h/30m --truth /tmp/truth.jsonl`,
		FlagSet: fs,
		Options: envOptions(),
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("sim takes no arguments, got %q; see hookstream sim --help", args)
			}
			if start != "" {
				t, err := time.Parse(time.RFC3339Nano, start)
				if err != nil {
					return fmt.Errorf("--start %q is not an RFC 3339 time such as 2025-06-02T14:00:00Z: %w", start, err)
				}
				c.Generate.Start = t
			}
			c.Send.Secret = firstSecret(secrets)
			c.RedisURL, c.DatabaseURL, c.Namespace, c.Partitions = cm.redisURL, cm.dbURL, cm.namespace, cm.partitions
			return sim.Run(ctx, c)
		},
	}
}

// firstSecret returns the first non-empty secret of a comma-separated list.
func firstSecret(list string) []byte {
	for s := range strings.SplitSeq(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			return []byte(s)
		}
	}
	return nil
}
