package models

import (
	"fmt"
	"slices"
)

// Query types of journeys.
const (
	QueryTypeFunnel   = "funnel"
	QueryTypeJourneys = "journeys"
)

// FunnelQuery is queryType "funnel": how the instances of a journey that
// entered in the panel's time range (widened by the API to whole UTC days)
// went through its steps.
type FunnelQuery struct {
	// Journey is a configured journey's name (required).
	Journey string `json:"journey"`
	// ByEntryTopic gives one funnel per topic the instances entered with.
	ByEntryTopic bool `json:"byEntryTopic"`
}

// Validate checks the required fields.
func (q FunnelQuery) Validate() error {
	if q.Journey == "" {
		return fmt.Errorf("journey: required; name a configured journey, e.g. {\"journey\":\"customer_verification\"} (GET /api/v1/journeys lists them)")
	}
	return nil
}

// Journey instance statuses.
var InstanceStatuses = []string{"in_progress", "completed", "failed", "abandoned"}

// MaxInstances bounds a journeys query's listing.
const MaxInstances = 10000

// JourneysQuery is queryType "journeys": a journey's instances that entered
// in the panel's time range, counted by status and listed; or, with
// Subject, that one instance's timeline (the time range does not apply).
type JourneysQuery struct {
	// Journey is a configured journey's name (required).
	Journey string `json:"journey"`
	// Subject is a customer, resource or correlation id (as the journey's
	// subject says): that instance's timeline rather than the listing.
	Subject string `json:"subject"`
	// Status keeps the instances of one status: in_progress, completed,
	// failed or abandoned; empty for any.
	Status string `json:"status"`
	// Limit is how many instances at most, 1 to 10000; default 1000.
	Limit int `json:"limit"`
}

// Validate fills defaults and checks the fields.
func (q *JourneysQuery) Validate() error {
	if q.Journey == "" {
		return fmt.Errorf("journey: required; name a configured journey, e.g. {\"journey\":\"customer_verification\"} (GET /api/v1/journeys lists them)")
	}
	if q.Status != "" && !slices.Contains(InstanceStatuses, q.Status) {
		return fmt.Errorf("status: %q is not an instance status; use one of %v, or leave it empty for any", q.Status, InstanceStatuses)
	}
	if q.Subject != "" && q.Status != "" {
		return fmt.Errorf("status: a subject names one instance; give either a subject (its timeline) or a status (the listing), not both")
	}
	if q.Limit == 0 {
		q.Limit = 1000
	}
	if q.Limit < 1 || q.Limit > MaxInstances {
		return fmt.Errorf("limit: %d is out of range; ask for 1 to %d instances", q.Limit, MaxInstances)
	}
	return nil
}
