package ingest

import (
	"context"
	"fmt"
	"os"
	"time"

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
		now := ReadCounters()
		d := now.Sub(base)
		rctx, cancel := context.WithTimeout(context.Background(), r.opts.RedisTimeout)
		err := r.report(rctx, instance, time.Now(), int64(d.Rejected), int64(d.Overloaded+d.Failed))
		cancel()
		if err == nil {
			base = now
		}
	}
}

// report writes one report at now.
func (r *Receiver) report(ctx context.Context, instance string, now time.Time, rejected, unavailable int64) error {
	key := r.keys.IngestMinute(now.Unix() / 60)
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if rejected > 0 || unavailable > 0 {
			p.HIncrBy(ctx, key, "rejected", rejected)
			p.HIncrBy(ctx, key, "unavailable", unavailable)
			p.Expire(ctx, key, reportTTL)
		}
		p.HSet(ctx, r.keys.IngestSpool(), instance, fmt.Sprintf("%d %d", r.spool.Depth(), now.Unix()))
		p.Expire(ctx, r.keys.IngestSpool(), reportTTL)
		return nil
	})
	return err
}
