package api

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/journeys"
	"github.com/hookstream/hookstream/store"
	"github.com/jackc/pgx/v5"
)

// GET /journeys/{name}/instances/{subject} answers journeys.Instance,
// prediction included, as documented: for an unfinished instance with
// enough history (here 40 finished bank transfers, 30 completed, and one
// still waiting after all of them ended: the completion is 30/41, with its
// Wilson interval), one without (it has waited longer than any other),
// and none for a finished one.
func TestJourneyInstancePrediction(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	base := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
	var evs []store.Event
	ev := func(subject string, k int, topic string, at time.Time) {
		evs = append(evs, store.Event{ID: fmt.Sprintf("%s-%d", subject, k), Topic: topic, ResourceID: subject, Created: at, Received: at,
			Source: "webhook", Body: []byte("{}")})
	}
	for i := range 40 {
		s := fmt.Sprintf("bt%02d", i)
		at := base.Add(time.Duration(i) * time.Hour)
		ev(s, 0, "customer_bank_transfer_created", at)
		if i < 30 {
			ev(s, 1, "customer_bank_transfer_completed", at.Add(time.Duration(1+i%5)*time.Hour))
		} else {
			ev(s, 1, "customer_bank_transfer_failed", at.Add(time.Duration(1+i%3)*time.Hour))
		}
	}
	ev("open", 0, "customer_bank_transfer_created", base.Add(80*time.Hour))
	ev("stalled", 0, "customer_bank_transfer_created", base.Add(70*time.Hour))
	fold := journeys.NewFold(journeys.Default(), 0)
	var used pgx.Tx
	err := pgx.BeginFunc(ctx, f.DB, func(tx pgx.Tx) error {
		used = tx
		if _, err := store.InsertEvents(ctx, tx, evs); err != nil {
			return err
		}
		return fold.Fold(ctx, tx, evs)
	})
	fold.TxEnded(used, err == nil)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := journeys.Default().Get("bank_transfer")
	get := func(subject string) journeys.InstanceReport {
		t.Helper()
		want, err := journeys.Instance(ctx, f.DB, d, subject)
		if err != nil {
			t.Fatal(err)
		}
		a := f.get(t, "/api/v1/journeys/bank_transfer/instances/"+subject).ok(t)
		jsonEq(t, subject, a.body, want)
		var got journeys.InstanceReport
		a.decode(t, &got)
		return got
	}
	open := get("open").Prediction
	w := journeys.Wilson(30, 41)
	if open == nil || !open.Enough || open.Step != "created" || !open.AsOf.Equal(base.Add(80*time.Hour)) || open.WaitingSeconds != 0 ||
		open.Comparable != 42 || open.Completion == nil || math.Abs(open.Completion.Rate-w.Rate) > 1e-9 ||
		math.Abs(open.Completion.Low-w.Low) > 1e-9 || math.Abs(open.Completion.High-w.High) > 1e-9 || open.Next == nil || len(open.Next.Steps) != 2 {
		t.Fatalf("open: %+v", open)
	}
	stalled := get("stalled").Prediction
	if stalled == nil || stalled.Enough || stalled.Completion != nil || stalled.WaitingSeconds != 10*3600 || !strings.HasPrefix(stalled.Note, "not enough history") {
		t.Fatalf("stalled: %+v", stalled)
	}
	if done := get("bt00"); done.Status != journeys.Completed || done.Prediction != nil {
		t.Fatalf("bt00: %s with %+v", done.Status, done.Prediction)
	}
}
