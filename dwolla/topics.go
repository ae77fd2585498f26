package dwolla

import "strings"

// Outcome says how a terminal topic ends its lifecycle.
type Outcome string

const (
	OutcomeNone    Outcome = ""        // not terminal
	OutcomeSuccess Outcome = "success" // e.g. customer_verified, *_transfer_completed
	OutcomeFailure Outcome = "failure" // e.g. *_failed, *_cancelled, customer_suspended
)

// TopicInfo describes a topic in the catalogue.
type TopicInfo struct {
	Family   string  // lifecycle it belongs to: verification, funding_source, bank_transfer, ...
	Terminal bool    // ends its lifecycle (completed transfers may still fail later: ACH returns)
	Outcome  Outcome // for terminal topics
	Customer bool    // a customer_* topic (as opposed to the master account's own)
}

type topicDef struct {
	family   string
	outcome  Outcome
	terminal bool
}

// Topics of the master account; each also exists as customer_<name> unless
// listed in customerOnly. Source: ../shared/reference/dwolla.md section 3.
var masterTopics = map[string]topicDef{
	"account_suspended": {"account", OutcomeFailure, false},
	"account_activated": {"account", OutcomeNone, false},

	"funding_source_added":      {"funding_source", OutcomeNone, false},
	"funding_source_removed":    {"funding_source", OutcomeFailure, true},
	"funding_source_verified":   {"funding_source", OutcomeSuccess, true},
	"funding_source_unverified": {"funding_source", OutcomeNone, false},
	"funding_source_negative":   {"funding_source", OutcomeNone, false},
	"funding_source_updated":    {"funding_source", OutcomeNone, false},

	"microdeposits_added":       {"microdeposits", OutcomeNone, false},
	"microdeposits_completed":   {"microdeposits", OutcomeNone, false},
	"microdeposits_failed":      {"microdeposits", OutcomeFailure, true},
	"microdeposits_maxattempts": {"microdeposits", OutcomeFailure, true},

	"bank_transfer_created":         {"bank_transfer", OutcomeNone, false},
	"bank_transfer_creation_failed": {"bank_transfer", OutcomeFailure, true},
	"bank_transfer_cancelled":       {"bank_transfer", OutcomeFailure, true},
	"bank_transfer_failed":          {"bank_transfer", OutcomeFailure, true},
	"bank_transfer_completed":       {"bank_transfer", OutcomeSuccess, true},

	"transfer_created":   {"transfer", OutcomeNone, false},
	"transfer_cancelled": {"transfer", OutcomeFailure, true},
	"transfer_failed":    {"transfer", OutcomeFailure, true},
	"transfer_completed": {"transfer", OutcomeSuccess, true},

	"mass_payment_created":   {"mass_payment", OutcomeNone, false},
	"mass_payment_completed": {"mass_payment", OutcomeSuccess, true},
	"mass_payment_cancelled": {"mass_payment", OutcomeFailure, true},

	"statement_created": {"statement", OutcomeNone, false},
}

// Topics that exist only with the customer_ prefix.
var customerOnly = map[string]topicDef{
	"customer_created":                        {"verification", OutcomeNone, false},
	"customer_reverification_needed":          {"verification", OutcomeNone, false},
	"customer_kba_verification_needed":        {"verification", OutcomeNone, false},
	"customer_kba_verification_passed":        {"verification", OutcomeNone, false},
	"customer_kba_verification_failed":        {"verification", OutcomeNone, false},
	"customer_verification_document_needed":   {"verification", OutcomeNone, false},
	"customer_verification_document_uploaded": {"verification", OutcomeNone, false},
	"customer_verification_document_approved": {"verification", OutcomeNone, false},
	"customer_verification_document_failed":   {"verification", OutcomeNone, false},
	"customer_verification_pending_review":    {"verification", OutcomeNone, false},
	"customer_address_verification_failed":    {"verification", OutcomeNone, false},
	"customer_verified":                       {"verification", OutcomeSuccess, true},
	"customer_suspended":                      {"verification", OutcomeFailure, true},
	"customer_deactivated":                    {"verification", OutcomeFailure, false},
	"customer_activated":                      {"verification", OutcomeNone, false},

	"customer_beneficial_owner_created":                        {"beneficial_owner", OutcomeNone, false},
	"customer_beneficial_owner_removed":                        {"beneficial_owner", OutcomeFailure, true},
	"customer_beneficial_owner_verification_document_needed":   {"beneficial_owner", OutcomeNone, false},
	"customer_beneficial_owner_verification_document_uploaded": {"beneficial_owner", OutcomeNone, false},
	"customer_beneficial_owner_verification_document_approved": {"beneficial_owner", OutcomeNone, false},
	"customer_beneficial_owner_verification_document_failed":   {"beneficial_owner", OutcomeNone, false},
	"customer_beneficial_owner_reverification_needed":          {"beneficial_owner", OutcomeNone, false},
	"customer_beneficial_owner_verified":                       {"beneficial_owner", OutcomeSuccess, true},

	"customer_exchange_reauth_required":   {"exchange", OutcomeNone, false},
	"customer_balance_inquiry_completed":  {"balance_inquiry", OutcomeSuccess, true},
	"customer_label_created":              {"label", OutcomeNone, false},
	"customer_label_ledger_entry_created": {"label", OutcomeNone, false},
	"customer_label_removed":              {"label", OutcomeNone, false},
}

var catalogue = func() map[string]TopicInfo {
	m := make(map[string]TopicInfo, 2*len(masterTopics)+len(customerOnly))
	for name, d := range masterTopics {
		m[name] = TopicInfo{Family: d.family, Terminal: d.terminal, Outcome: d.outcome}
		if d.family != "account" && d.family != "statement" {
			m["customer_"+name] = TopicInfo{Family: d.family, Terminal: d.terminal, Outcome: d.outcome, Customer: true}
		}
	}
	for name, d := range customerOnly {
		m[name] = TopicInfo{Family: d.family, Terminal: d.terminal, Outcome: d.outcome, Customer: true}
	}
	return m
}()

// LookupTopic returns what the catalogue knows of a topic. ok is false for a
// topic Dwolla added after this catalogue; such events are still stored, with
// family "unknown".
func LookupTopic(topic string) (info TopicInfo, ok bool) {
	info, ok = catalogue[topic]
	if !ok {
		info = TopicInfo{Family: "unknown", Customer: strings.HasPrefix(topic, "customer_")}
	}
	return info, ok
}

// Topics lists every catalogued topic name (unordered).
func Topics() []string {
	out := make([]string, 0, len(catalogue))
	for t := range catalogue {
		out = append(out, t)
	}
	return out
}
