package process

import (
	"strings"
	"testing"
	"time"
)

func TestOptionsDefaultsAndValidation(t *testing.T) {
	t.Parallel()
	o := Options{ClaimIdle: 9 * time.Second}.withDefaults()
	if o.Workers != 2 || o.BatchSize != 500 || o.Block != time.Second || o.ClaimEvery != 4500*time.Millisecond ||
		o.TxTimeout != 6*time.Second || o.BreakerFailures != 5 || o.Logger == nil || o.Group != "process" || o.Consumer == "" {
		t.Fatalf("defaults: %+v", o)
	}
	if err := o.validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	f := func(name string, o Options, want string) {
		t.Helper()
		err := o.withDefaults().validate()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want an error mentioning %q", name, err, want)
		}
	}
	f("negative workers", Options{Workers: -1}, "workers is negative")
	f("negative retry delay", Options{RetryMax: -time.Second}, "retry delay is negative")
	f("transaction timeout not below claim idle", Options{ClaimIdle: time.Minute, TxTimeout: time.Minute}, "must be below the claim idle time")
	f("block below Redis's resolution", Options{Block: time.Microsecond}, "read block")
}
