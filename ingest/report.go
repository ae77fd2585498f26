package ingest

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/hookstream/hookstream/stream"
	"github.com/redis/go-redis/v9"
)

// The receiver's report for alerts (issue 13): every reportEvery it adds
// the webhooks it rejected and answered 503 since its last report to a
// per-minute hash of the namespace, and writes its spool depth, so the
// alert evaluator (in any process) sees every receiver's trouble. A report
// that cannot be written (Redis down) is carried over to the next one.

// reportEvery is how often a receiver reports.
const reportEvery = 5 * time.Second

// reportTTL is how long the per-minute counts are kept.
const reportTTL = time.Hour

// reporter runs until the receiver stops.
func (r *Receiver) reporter() {
	defer r.drainDone.Done()
	host, _ := os.Hostname()
	instance := fmt.Sprintf("%s-%d-%p", host, os.Getpid(), r)
	base := ReadCounters()
	t := time.NewTicker(reportEvery)
	defer t.Stop()
	for {
		select {
		case <-r.quit:
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(context.Background(), r.opts.RedisTimeout)
		base, _ = r.reportSince(rctx, instance, base, time.Now())
		cancel()
	}
}

// reportSince reports what the counters gained since base and returns the
// new base: base itself when the report could not be written, so nothing
// is lost.
func (r *Receiver) reportSince(ctx context.Context, instance string, base Counters, now time.Time) (Counters, error) {
	cur := ReadCounters()
	d := cur.Sub(base)
	if err := r.report(ctx, instance, now, int64(d.Rejected), int64(d.Overloaded+d.Failed)); err != nil {
		return base, err
	}
	return cur, nil
}

// report writes one report at now.
func (r *Receiver) report(ctx context.Context, instance string, now time.Time, rejected, unavailable int64) error {
	key := r.keys.IngestMinute(now.Unix() / 60)
	run := r.rdb.TxPipelined
	if _, ok := r.rdb.(*redis.ClusterClient); ok {
		run = r.rdb.Pipelined // the two keys are in different slots: no MULTI spans them on a cluster
	}
	_, err := run(ctx, func(p redis.Pipeliner) error {
		if rejected > 0 || unavailable > 0 {
			p.HIncrBy(ctx, key, stream.IngestRejected, rejected)
			p.HIncrBy(ctx, key, stream.IngestUnavailable, unavailable)
			p.Expire(ctx, key, reportTTL)
		}
		p.HSet(ctx, r.keys.IngestSpool(), instance, stream.SpoolReport(r.spool.Depth(), now))
		p.Expire(ctx, r.keys.IngestSpool(), reportTTL)
		return nil
	})
	return err
}
