package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/hookstream/hookstream/anomaly"
	"github.com/redis/go-redis/v9"
)

// The anomalies route lists what the scorer recorded, as anomaly.List does,
// page by page; the live feed carries the scorer's announcements.
func TestAnomaliesRouteAndLiveMessages(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := context.Background()
	base := time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC)
	for i := range 30 {
		score, found := 0.1, false
		if i%10 == 3 {
			score, found = 0.97, true
		}
		if _, err := f.DB.Exec(ctx, `INSERT INTO anomalies (series, start, size_s, revision, value, expected, low, high, score, anomaly, reason)
VALUES ($1, $2, 300, 0, $3, 10, 5, 15, $4, $5, 'test')`, fmt.Sprint("volume/family=", []string{"transfer", "verification"}[i%2]), base.Add(time.Duration(i)*5*time.Minute), float64(i), score, found); err != nil {
			t.Fatal(err)
		}
	}
	rng := "from=2025-06-01&to=2025-06-03"
	want, err := anomaly.List(ctx, f.DB, anomaly.Filter{From: base.Add(-24 * time.Hour), To: base.Add(24 * time.Hour), Only: true})
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Anomalies  []anomaly.Record `json:"anomalies"`
		NextCursor *string          `json:"next_cursor"`
	}
	jsonEq(t, "anomalies", f.get(t, "/api/v1/anomalies?"+rng).ok(t).body, map[string]any{"anomalies": want, "next_cursor": nil})
	if len(want) != 3 || !want[0].Anomaly || want[0].Window != "5m" {
		t.Fatalf("anomalies %+v", want)
	}
	// Every scored window, in pages of 7, none repeated.
	seen := map[string]bool{}
	cursor := ""
	for {
		p := "/api/v1/anomalies?all=true&limit=7&" + rng
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		f.get(t, p).ok(t).decode(t, &page)
		for _, r := range page.Anomalies {
			k := r.Series + r.Start.String()
			if seen[k] {
				t.Fatalf("%s listed twice", k)
			}
			seen[k] = true
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	if len(seen) != 30 {
		t.Fatalf("walked %d scored windows, want 30", len(seen))
	}
	f.get(t, "/api/v1/anomalies?series=volume/family=transfer&all=true&"+rng).ok(t).decode(t, &page)
	if len(page.Anomalies) != 15 {
		t.Fatalf("one series: %d", len(page.Anomalies))
	}
	// A series' name is it and every group of it; name/ its groups; a
	// name that only starts another's is neither.
	for q, n := range map[string]int{"volume": 30, "volume/": 30, "vol": 0, "volume/family=": 0} {
		f.get(t, "/api/v1/anomalies?all=true&limit=100&series="+url.QueryEscape(q)+"&"+rng).ok(t).decode(t, &page)
		if len(page.Anomalies) != n {
			t.Errorf("series=%s: %d scored windows, want %d", q, len(page.Anomalies), n)
		}
	}
	for _, bad := range []string{"min_score=2", "all=maybe", "limit=0", "cursor=x"} {
		if a := f.get(t, "/api/v1/anomalies?"+bad); a.status != 400 {
			t.Fatalf("%s: %d", bad, a.status)
		}
	}

	// An announcement reaches live clients that asked for anomalies.
	c := f.live(t, "types=anomaly", "", readSecret)
	rec := want[0]
	b, _ := json.Marshal(rec)
	if err := f.Redis.XAdd(ctx, &redis.XAddArgs{Stream: f.Keys.Anomalies(), Values: []string{"anomaly", string(b)}}).Err(); err != nil {
		t.Fatal(err)
	}
	m, ok := c.next(10*time.Second, false)
	var got anomaly.Record
	if !ok || m.typ != "anomaly" || json.Unmarshal([]byte(m.data), &got) != nil || got.Series != rec.Series || !got.Start.Equal(rec.Start) {
		t.Fatalf("live anomaly message %+v", m)
	}
}
