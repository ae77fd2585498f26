package dwolla

import "testing"

func TestStatusAfter(t *testing.T) {
	t.Parallel()
	f := func(topic, coll, status string) {
		t.Helper()
		if c, s := StatusAfter(topic); c != coll || s != status {
			t.Errorf("StatusAfter(%s) = %s, %s; want %s, %s", topic, c, s, coll, status)
		}
	}
	f("customer_created", "customers", "unverified")
	f("customer_verified", "customers", "verified")
	f("customer_verification_document_needed", "customers", "document")
	f("customer_suspended", "customers", "suspended")
	f("customer_funding_source_added", "funding-sources", "unverified")
	f("funding_source_verified", "funding-sources", "verified")
	f("customer_microdeposits_completed", "funding-sources", "unverified")
	f("customer_funding_source_removed", "funding-sources", "removed")
	f("customer_bank_transfer_created", "transfers", "pending")
	f("bank_transfer_completed", "transfers", "processed")
	f("customer_transfer_failed", "transfers", "failed")
	f("customer_bank_transfer_creation_failed", "transfers", "failed")
	f("customer_mass_payment_completed", "mass-payments", "complete")
	f("customer_beneficial_owner_verified", "beneficial-owners", "verified")
	f("account_suspended", "", "suspended")
	// Every catalogued topic names a status; the customer_ ones a collection.
	for _, topic := range Topics() {
		c, s := StatusAfter(topic)
		if s == "" || (c == "" && len(topic) > 9 && topic[:9] == "customer_") {
			t.Errorf("StatusAfter(%s) = %q, %q", topic, c, s)
		}
	}
}
