package dwolla

import "strings"

// StatusAfter is what an event of topic says about the resource it is
// about: the collection of that resource (customers, funding-sources,
// transfers, mass-payments, beneficial-owners; "" for the master account's
// own topics such as account_suspended) and the status Dwolla reports for
// it right after such an event:
//
//	customer_created                                    unverified
//	customer_verified, _activated, _document_approved,
//	  _kba_verification_passed                          verified
//	customer_reverification_needed                      retry
//	customer_kba_verification_needed                    kba
//	customer_kba_verification_failed, customer_verification_document_*
//	  (needed, uploaded, failed)                        document
//	customer_suspended                                  suspended
//	customer_deactivated                                deactivated
//	…funding_source_added, _unverified,
//	  …microdeposits_* (micro-deposits pending)         unverified
//	…funding_source_verified                            verified
//	…funding_source_removed                             removed
//	…_created (transfers, mass payments)                pending
//	…_completed: transfers processed, mass payments     complete
//	…_failed, …_creation_failed                         failed
//	…_cancelled                                         cancelled
//
// Anything else reads as the topic's last word. Reconciliation compares it
// with the status Dwolla reports now, to tell which step of a journey the
// events we hold have not reached; the simulator's fake API serves it.
func StatusAfter(topic string) (collection, status string) {
	rest, customer := strings.CutPrefix(topic, "customer_")
	switch {
	case strings.HasPrefix(rest, "funding_source_"), strings.HasPrefix(rest, "microdeposits_"):
		collection = "funding-sources"
	case strings.HasPrefix(rest, "bank_transfer_"), strings.HasPrefix(rest, "transfer_"):
		collection = "transfers"
	case strings.HasPrefix(rest, "mass_payment_"):
		collection = "mass-payments"
	case strings.HasPrefix(rest, "beneficial_owner_"):
		collection = "beneficial-owners"
	case customer:
		collection = "customers"
	}
	switch topic {
	case "customer_created":
		return collection, "unverified"
	case "customer_verified", "customer_activated", "customer_verification_document_approved", "customer_kba_verification_passed":
		return collection, "verified"
	case "customer_reverification_needed":
		return collection, "retry"
	case "customer_kba_verification_needed":
		return collection, "kba"
	case "customer_kba_verification_failed":
		return collection, "document"
	case "customer_suspended":
		return collection, "suspended"
	case "customer_deactivated":
		return collection, "deactivated"
	}
	switch {
	case collection == "funding-sources" && strings.HasSuffix(rest, "_verified"):
		return collection, "verified"
	case collection == "funding-sources" && strings.HasSuffix(rest, "_removed"):
		return collection, "removed"
	case collection == "funding-sources" && (strings.HasSuffix(rest, "_added") || strings.HasSuffix(rest, "_unverified") ||
		strings.HasPrefix(rest, "microdeposits_")):
		return collection, "unverified"
	case strings.HasPrefix(topic, "customer_verification_document_"):
		return collection, "document"
	case strings.HasSuffix(topic, "_created"):
		return collection, "pending"
	case strings.HasSuffix(topic, "_completed"):
		if collection == "mass-payments" {
			return collection, "complete"
		}
		return collection, "processed"
	case strings.HasSuffix(topic, "_failed"):
		return collection, "failed"
	case strings.HasSuffix(topic, "_cancelled"):
		return collection, "cancelled"
	}
	return collection, topic[strings.LastIndexByte(topic, '_')+1:]
}
