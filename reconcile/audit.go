package reconcile

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/hookstream/hookstream/dwolla"
)

// Audit is what a run learnt from the webhook subscriptions: whether Dwolla
// paused one (it does after 400 consecutive failures), and, when the run
// found events missing, which deliveries on the days of those gaps (whole
// days: Dwolla filters deliveries by date) failed and why, and what was asked to
// be delivered again.
type Audit struct {
	Subscriptions []SubscriptionAudit `json:"subscriptions"`
	Paused        int                 `json:"paused"` // subscriptions Dwolla has paused
	Error         string              `json:"error,omitempty"`
}

// SubscriptionAudit is one subscription's deliveries on the days of the gaps.
type SubscriptionAudit struct {
	ID     string `json:"id"`
	URL    string `json:"url"`
	Paused bool   `json:"paused"`
	// Listed says whether the deliveries were listed: only when the run
	// found events missing (they tell why).
	Listed   bool `json:"listed"`
	Webhooks int  `json:"webhooks"` // deliveries listed
	Failed   int  `json:"failed"`   // whose last attempt was not answered 2xx
	// ByStatus counts the failed ones by the status of their last attempt
	// ("0": no answer).
	ByStatus map[string]int `json:"by_status"`
	// Retried are failed deliveries whose event is still missing, asked to
	// be delivered again (--retry-failed); RetryErrors those Dwolla refused.
	Retried     int               `json:"retried"`
	RetryErrors int               `json:"retry_errors"`
	Failures    []FailedDelivery  `json:"failures"` // the first auditFailuresKept
	Error       string            `json:"error,omitempty"`
	links       dwolla.HALLinks   // unexported: not recorded
	byEvent     map[string]string // event id -> webhook id, failed ones
}

// FailedDelivery is one failed delivery.
type FailedDelivery struct {
	WebhookID  string `json:"webhook_id"`
	EventID    string `json:"event_id"`
	Topic      string `json:"topic"`
	Attempts   int    `json:"attempts"`
	LastStatus int    `json:"last_status"`
	LastBody   string `json:"last_body,omitempty"`
}

const auditFailuresKept = 50

var subscriptionsPaused = metrics.NewGauge(`hookstream_reconcile_subscriptions_paused`, nil)

// audit lists the subscriptions and their deliveries in the run's window.
// A failure here is recorded in the audit, not a failed run: the events
// were compared and recovered already.
func (r *Reconciler) audit(ctx context.Context, run *Run, dry bool) (*Audit, error) {
	a := &Audit{Subscriptions: []SubscriptionAudit{}}
	subs, err := r.api.Subscriptions(ctx)
	run.APICalls++
	if err != nil {
		a.Error = "list the webhook subscriptions: " + err.Error()
		run.Errors++
		return a, nil
	}
	for _, s := range subs {
		sa := SubscriptionAudit{ID: s.ID, URL: s.URL, Paused: s.Paused, ByStatus: map[string]int{}, Failures: []FailedDelivery{},
			links: s.Links, byEvent: map[string]string{}}
		if s.Paused {
			a.Paused++
		}
		if run.Missing == 0 {
			// Nothing missing, nothing to explain: listing the deliveries
			// (by whole days, all Dwolla filters by) would cost pages on
			// every run for nothing.
		} else if err := r.deliveries(ctx, run, &sa); err != nil {
			sa.Error = err.Error()
			run.Errors++
		} else if r.opts.RetryFailed && !dry {
			if err := r.retryFailed(ctx, run, &sa); err != nil {
				sa.Error = err.Error()
				run.Errors++
			}
		}
		a.Subscriptions = append(a.Subscriptions, sa)
	}
	if !dry {
		subscriptionsPaused.Set(float64(a.Paused))
	}
	return a, nil
}

// deliveries pages the subscription's webhooks of the days the run found
// gaps on.
func (r *Reconciler) deliveries(ctx context.Context, run *Run, sa *SubscriptionAudit) error {
	link := sa.links["webhooks"].Href
	if link == "" {
		return fmt.Errorf("subscription %s has no webhooks link", sa.ID)
	}
	u, err := url.Parse(link)
	if err != nil {
		return fmt.Errorf("subscription %s: webhooks link: %w", sa.ID, err)
	}
	q := u.Query()
	// The days of the gaps found, not the whole window: a first run's
	// window is 30 days of deliveries.
	q.Set("startDate", run.gapFrom.UTC().Format(time.DateOnly))
	// A delivery is made when its event is created: a day more covers one
	// made just after midnight.
	q.Set("endDate", run.gapTo.UTC().Add(24*time.Hour).Format(time.DateOnly))
	q.Set("limit", strconv.Itoa(r.opts.PageSize))
	u.RawQuery = q.Encode()
	href := u.String()
	sa.Listed = true
	for href != "" {
		page, err := r.api.WebhooksAt(ctx, href)
		run.APICalls++
		if err != nil {
			return fmt.Errorf("list the deliveries of subscription %s: %w", sa.ID, err)
		}
		if len(page.Embedded.Webhooks) == 0 {
			break
		}
		for _, w := range page.Embedded.Webhooks {
			sa.Webhooks++
			status, body := 0, ""
			if n := len(w.Attempts); n > 0 {
				status, body = w.Attempts[n-1].Response.StatusCode, w.Attempts[n-1].Response.Body
			}
			if status >= 200 && status < 300 {
				continue
			}
			sa.Failed++
			sa.ByStatus[strconv.Itoa(status)]++
			sa.byEvent[w.EventID] = w.ID
			if len(sa.Failures) < auditFailuresKept {
				if len(body) > 200 {
					body = body[:200]
				}
				sa.Failures = append(sa.Failures, FailedDelivery{WebhookID: w.ID, EventID: w.EventID, Topic: w.Topic,
					Attempts: len(w.Attempts), LastStatus: status, LastBody: body})
			}
		}
		href = page.Links["next"].Href
	}
	return nil
}

// retryFailed asks Dwolla to deliver again the failed deliveries whose
// events are neither stored nor recovered by this run.
func (r *Reconciler) retryFailed(ctx context.Context, run *Run, sa *SubscriptionAudit) error {
	if len(sa.byEvent) == 0 {
		return nil
	}
	ids := make([]string, 0, len(sa.byEvent))
	for id := range sa.byEvent {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	rows, err := r.db.Query(ctx, `SELECT i.id FROM unnest($1::text[]) AS i(id)
		WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = lower(i.id))
		  AND NOT EXISTS (SELECT 1 FROM reconcile_gaps g WHERE g.run_id = $2 AND g.event_id = lower(i.id)
		                  AND g.outcome IN ('recovered', 'in_flight', 'dead_lettered'))`, ids, run.ID)
	if err != nil {
		return fmt.Errorf("find the failed deliveries still missing: %w", err)
	}
	var missing []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		missing = append(missing, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range missing {
		_, err := r.api.RetryWebhook(ctx, sa.byEvent[id])
		run.APICalls++
		if err != nil {
			sa.RetryErrors++
			r.opts.Logger.Warn("reconcile: Dwolla refused to deliver a webhook again", "webhook", sa.byEvent[id], "event", id, "err", err)
			continue
		}
		sa.Retried++
	}
	return nil
}
