package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/resource/httpadapter"

	"github.com/hookstream/hookstream/grafana-plugin/pkg/apiclient"
)

// The resources (CallResource, GET /api/datasources/uid/<uid>/resources/...
// in Grafana) fill the query editor's pickers. Each answers JSON shaped for
// a picker; an error answers {"error": "...", "status": n}.
//
//	topics                    {"topics": [...]}: the topics seen since ?since=
//	journeys                  {"journeys": [{name, description, subject, steps: [name...]}]}
//	journeys/{name}/steps     {"journey": name, "steps": [{name, topics, optional, abandon_after}]}
//	metrics                   {"metrics": [{name, unit, description}], "windows": [...]}
//	dimensions                {"dimensions": [name...]}
//	dimensions/{name}/values  {"dimension": name, "values": [...], "values_since": t}: values seen since ?since=
//	series                    {"series": [{name, metric, window, instances: [...]}]}: the watched series
//
// ?since= is an RFC 3339 time or a date; without it the API's default (the
// last 7 days) applies.
var resourcePaths = []string{"topics", "journeys", "journeys/{name}/steps", "metrics", "dimensions", "dimensions/{name}/values", "series"}

var _ backend.CallResourceHandler = (*Datasource)(nil)

// CallResource answers the query editor's resource calls.
func (d *Datasource) CallResource(ctx context.Context, req *backend.CallResourceRequest, sender backend.CallResourceResponseSender) error {
	return d.resources.CallResource(ctx, req, sender)
}

func (d *Datasource) newResourceHandler() backend.CallResourceHandler {
	mux := http.NewServeMux()
	get := func(pattern string, fn func(r *http.Request) (any, error)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet {
				w.Header().Set("Allow", http.MethodGet)
				writeResourceError(w, http.StatusMethodNotAllowed, r.Method+" is not allowed; the resources answer GET only")
				return
			}
			if d.cfgErr != nil {
				writeResourceError(w, http.StatusInternalServerError, "the datasource is misconfigured: "+d.cfgErr.Error())
				return
			}
			out, err := fn(r)
			if err != nil {
				writeResourceErr(w, err)
				return
			}
			writeResourceJSON(w, http.StatusOK, out)
		})
	}
	get("/topics", d.resTopics)
	get("/journeys", d.resJourneys)
	get("/journeys/{name}/steps", d.resJourneySteps)
	get("/metrics", d.resMetrics)
	get("/dimensions", d.resDimensions)
	get("/dimensions/{name}/values", d.resDimensionValues)
	get("/series", d.resSeries)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeResourceError(w, http.StatusNotFound, fmt.Sprintf("no resource %q; the resources are %s", strings.TrimPrefix(r.URL.Path, "/"), strings.Join(resourcePaths, ", ")))
	})
	return httpadapter.New(mux)
}

// resourceError is an error with the status a resource answers it with.
type resourceError struct {
	status int
	msg    string
}

func (e *resourceError) Error() string { return e.msg }

func writeResourceErr(w http.ResponseWriter, err error) {
	if re, ok := err.(*resourceError); ok {
		writeResourceError(w, re.status, re.msg)
		return
	}
	status := apiclient.StatusOf(err)
	switch {
	case status == http.StatusUnauthorized:
		writeResourceError(w, http.StatusBadGateway, "the hookstream API refused the token (401); set the datasource's apiToken to the secret of an entry of HOOKSTREAM_API_TOKENS")
	case status == http.StatusForbidden:
		writeResourceError(w, http.StatusBadGateway, "the token's scope does not allow this (403): "+err.Error())
	case status == http.StatusBadRequest || status == http.StatusNotFound:
		writeResourceError(w, status, err.Error())
	case ctxDone(err):
		writeResourceError(w, http.StatusGatewayTimeout, err.Error())
	default:
		writeResourceError(w, http.StatusBadGateway, err.Error())
	}
}

func writeResourceError(w http.ResponseWriter, status int, msg string) {
	writeResourceJSON(w, status, map[string]any{"error": msg, "status": status})
}

func writeResourceJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encode the answer","status":500}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}

// since reads ?since=, an RFC 3339 time or a date (zero: the API's default).
func since(r *http.Request) (time.Time, error) {
	s := r.URL.Query().Get("since")
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, &resourceError{http.StatusBadRequest, fmt.Sprintf("since: %q is not an RFC 3339 time (2025-06-02T14:00:00Z) or a date (2025-06-02)", s)}
}

func (d *Datasource) catalog(r *http.Request) (apiclient.Catalog, error) {
	s, err := since(r)
	if err != nil {
		return apiclient.Catalog{}, err
	}
	return d.api.Catalog(r.Context(), s)
}

func (d *Datasource) resTopics(r *http.Request) (any, error) {
	cat, err := d.catalog(r)
	if err != nil {
		return nil, err
	}
	topics := []string{}
	for _, dim := range cat.Dimensions {
		if dim.Name == "topic" {
			topics = append(topics, dim.Values...)
		}
	}
	slices.Sort(topics)
	return map[string]any{"topics": topics, "values_since": cat.ValuesSince}, nil
}

func (d *Datasource) resJourneys(r *http.Request) (any, error) {
	js, err := d.api.Journeys(r.Context())
	if err != nil {
		return nil, err
	}
	type journey struct {
		Name        string   `json:"name"`
		Description string   `json:"description,omitempty"`
		Subject     string   `json:"subject"`
		Steps       []string `json:"steps"`
	}
	out := []journey{}
	for _, j := range js {
		steps := []string{}
		for _, s := range j.Steps {
			steps = append(steps, s.Name)
		}
		out = append(out, journey{j.Name, j.Description, j.Subject, steps})
	}
	return map[string]any{"journeys": out}, nil
}

func (d *Datasource) resJourneySteps(r *http.Request) (any, error) {
	name := r.PathValue("name")
	js, err := d.api.Journeys(r.Context())
	if err != nil {
		return nil, err
	}
	var names []string
	for _, j := range js {
		if j.Name == name {
			steps := j.Steps
			if steps == nil {
				steps = []apiclient.JourneyStep{}
			}
			return map[string]any{"journey": j.Name, "steps": steps}, nil
		}
		names = append(names, j.Name)
	}
	return nil, &resourceError{http.StatusNotFound, fmt.Sprintf("no journey %q; the journeys are %s", name, strings.Join(names, ", "))}
}

func (d *Datasource) resMetrics(r *http.Request) (any, error) {
	cat, err := d.catalog(r)
	if err != nil {
		return nil, err
	}
	return map[string]any{"metrics": orEmpty(cat.Metrics), "windows": orEmpty(cat.Windows)}, nil
}

func (d *Datasource) resDimensions(r *http.Request) (any, error) {
	cat, err := d.catalog(r)
	if err != nil {
		return nil, err
	}
	names := []string{}
	for _, dim := range cat.Dimensions {
		names = append(names, dim.Name)
	}
	return map[string]any{"dimensions": names}, nil
}

func (d *Datasource) resDimensionValues(r *http.Request) (any, error) {
	name := r.PathValue("name")
	cat, err := d.catalog(r)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, dim := range cat.Dimensions {
		if dim.Name == name {
			return map[string]any{"dimension": dim.Name, "values": orEmpty(dim.Values), "values_since": cat.ValuesSince}, nil
		}
		names = append(names, dim.Name)
	}
	return nil, &resourceError{http.StatusNotFound, fmt.Sprintf("no dimension %q; the dimensions are %s", name, strings.Join(names, ", "))}
}

func (d *Datasource) resSeries(r *http.Request) (any, error) {
	heads, err := d.api.WatchedInstances(r.Context())
	if apiclient.StatusOf(err) == http.StatusNotFound {
		return map[string]any{"series": []any{}}, nil // the server watches no series
	}
	if err != nil {
		return nil, err
	}
	type series struct {
		Name      string   `json:"name"`
		Metric    string   `json:"metric"`
		Window    string   `json:"window"`
		Instances []string `json:"instances"`
	}
	out := []*series{}
	byName := map[string]*series{}
	for _, h := range heads {
		name, _, _ := strings.Cut(h.Series, "/")
		s := byName[name]
		if s == nil {
			s = &series{Name: name, Metric: h.Metric, Window: h.Window, Instances: []string{}}
			byName[name] = s
			out = append(out, s)
		}
		s.Instances = append(s.Instances, h.Series)
	}
	return map[string]any{"series": out}, nil
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
