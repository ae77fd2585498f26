package ingest

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hookstream/hookstream/dwolla"
)

// BenchmarkServeWebhook measures the handler alone (no network), storing
// into the test Redis with group commit, and with storing switched off.
// Run: go test ./ingest -run '^$' -bench ServeWebhook -benchmem
func BenchmarkServeWebhook(b *testing.B) {
	for _, verifyOnly := range []bool{false, true} {
		name := "store"
		if verifyOnly {
			name = "verify-only"
		}
		b.Run(name, func(b *testing.B) {
			h := newHarness(b, nil, Options{VerifyOnly: verifyOnly})
			b.ReportAllocs()
			b.SetParallelism(32) // 64 requests in flight on 2 cores, like the closed-loop bench
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					i++
					body := event(fmt.Sprintf("bench-%p-%d", pb, i))
					req := httptest.NewRequest(http.MethodPost, "/webhooks/dwolla", bytes.NewReader(body))
					req.Header.Set(dwolla.SignatureHeader, dwolla.Sign(secret, body))
					rec := httptest.NewRecorder()
					h.recv.ServeWebhook(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatalf("answer %d: %s", rec.Code, rec.Body)
					}
				}
			})
		})
	}
}
