package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"

	"github.com/hookstream/hookstream/grafana-plugin/pkg/apiclient"
)

// CheckHealth says whether the API answers, whether the token is valid and
// its scope, the hookstream version and how far processing is behind.
func (d *Datasource) CheckHealth(ctx context.Context, _ *backend.CheckHealthRequest) (*backend.CheckHealthResult, error) {
	fail := func(msg string) (*backend.CheckHealthResult, error) {
		return &backend.CheckHealthResult{Status: backend.HealthStatusError, Message: msg}, nil
	}
	if d.cfgErr != nil {
		return fail(d.cfgErr.Error())
	}
	info, err := d.api.Info(ctx)
	switch st := apiclient.StatusOf(err); {
	case err == nil:
	case st == http.StatusUnauthorized:
		return fail("hookstream answers, but it refused the API token (401). Set apiToken to the secret part of an entry of the server's HOOKSTREAM_API_TOKENS (name:scope:secret; send the secret only).")
	case st == http.StatusNotFound:
		return fail("the URL answers but has no GET /api/v1/info (404): is it hookstream's API listener (--api-addr, default 127.0.0.1:8081), not the webhook receiver (--http-addr)?")
	case st != 0:
		return fail(fmt.Sprintf("GET /api/v1/info failed: %v", err))
	default:
		return fail(err.Error())
	}

	details := map[string]any{"version": info.Version, "namespace": info.Namespace, "token": info.Token, "scope": info.Scope}
	msg := fmt.Sprintf("hookstream %s (namespace %s) answers; token %q has the %s scope", info.Version, info.Namespace, info.Token, info.Scope)
	st, err := d.api.Status(ctx)
	if err != nil {
		// The API and token work; only the pipeline's state is unknown.
		return &backend.CheckHealthResult{Status: backend.HealthStatusError, Message: msg +
			fmt.Sprintf(", but the pipeline status cannot be read: %v; check that Redis is reachable from hookstream", err),
			JSONDetails: mustJSON(details)}, nil
	}
	backlog := st.Total.Pending + max(st.Total.Lag, 0)
	details["pending"], details["lag"], details["oldest_pending_seconds"] = st.Total.Pending, st.Total.Lag, st.Total.OldestAge.Seconds()
	details["paused"], details["dlq_open"], details["processors"] = st.Paused, st.DLQOpen, len(st.Processors)
	if !st.Watermark.IsZero() && st.Watermark.Year() > 1 {
		details["event_watermark"] = st.Watermark
	}
	var notes []string
	if backlog == 0 {
		msg += "; processing is up to date"
	} else {
		msg += fmt.Sprintf("; processing lag: %d entries not yet processed (oldest pending %s)", backlog, st.Total.OldestAge.Round(time.Second))
	}
	if st.Paused {
		notes = append(notes, "processing is paused: resume it with `hookstream resume`")
	}
	if len(st.Processors) == 0 {
		notes = append(notes, "no processor is running: start one with `hookstream serve --roles process`")
	}
	if st.DLQOpen > 0 {
		notes = append(notes, fmt.Sprintf("%d dead letters are open: see `hookstream dlq list`", st.DLQOpen))
	}
	for part, e := range st.Errors {
		notes = append(notes, fmt.Sprintf("status part %s could not be read: %s", part, e))
	}
	if len(notes) > 0 {
		msg += ". " + strings.Join(notes, "; ")
	}
	return &backend.CheckHealthResult{Status: backend.HealthStatusOk, Message: msg, JSONDetails: mustJSON(details)}, nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only maps of plain values are passed
	}
	return b
}
