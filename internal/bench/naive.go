package bench

import (
	"io"
	"net/http"

	"github.com/hookstream/hookstream/dwolla"
	"github.com/hookstream/hookstream/stream"
	"github.com/redis/go-redis/v9"
)

// NaiveReceiver is the reference hookstream is measured against: what a
// careful first version would do. It checks the signature and parses the body
// like hookstream, then issues one XADD per request and waits for it. It does
// not deduplicate and has no spool, so it is neither exactly-once nor durable
// across a Redis outage: the benchmark shows what those guarantees cost (or
// save, with group commit).
func NaiveReceiver(rdb redis.UniversalClient, keys stream.Keys, secrets [][]byte, maxBody int64) http.Handler {
	v := dwolla.NewVerifier(secrets)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		if !v.Verify(body, dwolla.SignatureFrom(r.Header)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		ev, err := dwolla.ParseEvent(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		e := stream.NewEntry(keys.Partition(ev.PartitionKey()), ev.ID, body, stream.SourceWebhook)
		err = rdb.XAdd(r.Context(), &redis.XAddArgs{Stream: keys.Stream(e.Partition), Values: e.Fields}).Err()
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"stored"}`))
	})
}
