package alert

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/hookstream/hookstream/stream"
	"github.com/hookstream/hookstream/windows"
	"github.com/redis/go-redis/v9"
)

// RoleOptions configure the alert role.
type RoleOptions struct {
	Evaluator EvaluatorOptions
	Notifier  NotifierOptions
}

// Role is the alert role: the evaluator and the notifier of one process.
// Run it in as many processes as you like: one evaluates at a time (an
// advisory lock), and every one sends (leases share the outbox).
type Role struct {
	Evaluator *Evaluator
	Notifier  *Notifier
}

// NewRole builds the alert role for rules.
func NewRole(db DB, rdb redis.UniversalClient, keys stream.Keys, rules *Rules, wcfg windows.Config, opts RoleOptions) *Role {
	r := &Role{
		Evaluator: NewEvaluator(db, rdb, keys, rules, wcfg, opts.Evaluator),
		Notifier:  NewNotifier(db, rules.Targets, opts.Notifier),
	}
	r.Evaluator.Notified = r.Notifier.Wake
	return r
}

// Run evaluates and notifies until ctx ends.
func (r *Role) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.Evaluator.Run(ctx) }()
	go func() { defer wg.Done(); r.Notifier.Run(ctx) }()
	wg.Wait()
	return nil
}

// TestResult is what a test notification came to.
type TestResult struct {
	Target     string  `json:"target"`
	ID         string  `json:"id"`
	Delivered  bool    `json:"delivered"`
	Status     int     `json:"status"` // HTTP status; 0: no answer
	Error      string  `json:"error,omitempty"`
	DurationMS float64 `json:"duration_ms"`
}

// SendTest sends a sample firing notification to t at once, outside the
// outbox (no retries), and says how the target answered.
func SendTest(ctx context.Context, t *Target, client *http.Client, now time.Time) (TestResult, error) {
	value := 51.0
	g := Group{
		ID: NewID("ntf_"), Key: GroupKey("hookstream-test"), Rule: "hookstream-test", Severity: SeverityInfo,
		Status: StateFiring, CreatedAt: now.UTC(),
		Alerts: []Notification{{
			Rule: "hookstream-test", Severity: SeverityInfo, State: StateFiring, Fingerprint: Fingerprint("hookstream-test", nil),
			Value: value, Op: ">", Threshold: 50, Window: "1m", Labels: map[string]string{"test": "true"}, StartedAt: now.UTC(),
			Summary:     "a test notification from hookstream: this target is set up",
			Description: "Sent by `hookstream alerts test`. Nothing is wrong.",
		}},
	}
	body, err := Body(t.Kind, g)
	if err != nil {
		return TestResult{}, err
	}
	n := NewNotifier(nil, nil, NotifierOptions{Client: client})
	o := n.send(ctx, t, claimed{ID: g.ID, Kind: t.Kind, Body: body, CreatedAt: now, Attempt: 1})
	res := TestResult{Target: t.Name, ID: g.ID, Delivered: o.Delivered, Status: o.Status, Error: o.Err,
		DurationMS: float64(o.Took.Microseconds()) / 1000}
	if !o.Delivered && res.Error == "" {
		res.Error = fmt.Sprintf("status %d", o.Status)
	}
	return res, nil
}

// Target finds a target by name.
func (rs *Rules) Target(name string) (*Target, error) {
	for _, t := range rs.Targets {
		if t.Name == name {
			return t, nil
		}
	}
	if len(rs.Targets) == 0 {
		return nil, fmt.Errorf("target %q: the alert rules list no targets; add targets: to the rules file (--alert-rules)", name)
	}
	names := make([]string, len(rs.Targets))
	for i, t := range rs.Targets {
		names[i] = t.Name
	}
	return nil, fmt.Errorf("target %q: no such target; the rules file has %v", name, names)
}
