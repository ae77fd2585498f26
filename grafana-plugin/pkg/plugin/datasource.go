// Package plugin is the hookstream datasource's backend: it answers
// Grafana's health checks and queries by calling hookstream's API and
// turning the answers into data frames. Settings and query models live in
// pkg/models, the HTTP client in pkg/apiclient. An instance keeps only its
// API client and the API's window sizes; it never touches Redis or
// PostgreSQL.
package plugin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/backend/datasource"
	"github.com/grafana/grafana-plugin-sdk-go/backend/httpclient"
	"github.com/grafana/grafana-plugin-sdk-go/backend/instancemgmt"

	"github.com/hookstream/hookstream/grafana-plugin/pkg/apiclient"
	"github.com/hookstream/hookstream/grafana-plugin/pkg/models"
)

// PluginID is the plugin's id in plugin.json.
const PluginID = "hookstream-analytics-datasource"

var (
	_ backend.QueryDataHandler      = (*Datasource)(nil)
	_ backend.CheckHealthHandler    = (*Datasource)(nil)
	_ instancemgmt.InstanceDisposer = (*Datasource)(nil)
)

// Datasource is one configured hookstream datasource.
type Datasource struct {
	api *apiclient.Client
	// uid is the datasource's uid in Grafana: live channels are
	// ds/<uid>/<path>.
	uid string
	// cfgErr is why the settings cannot work; every query and health check
	// reports it, rather than the instance failing to start.
	cfgErr error
	mux    *datasource.QueryTypeMux
	// resources answers CallResource (resources.go).
	resources backend.CallResourceHandler
	// liveConnected, when set (by tests), is called each time RunStream's
	// connection to the live feed is answered.
	liveConnected func(path string)

	mu      sync.Mutex
	windows []time.Duration // the API's window sizes, ascending, once read
}

// NewDatasource builds an instance from Grafana's settings.
func NewDatasource(ctx context.Context, s backend.DataSourceInstanceSettings) (instancemgmt.Instance, error) {
	ds := &Datasource{uid: s.UID}
	ds.mux = datasource.NewQueryTypeMux()
	ds.mux.HandleFunc(models.QueryTypeMetrics, ds.perQuery(ds.queryMetrics))
	ds.mux.HandleFunc(models.QueryTypeEvents, ds.perQuery(ds.queryEvents))
	ds.mux.HandleFunc(models.QueryTypeFunnel, ds.perQuery(ds.queryFunnel))
	ds.mux.HandleFunc(models.QueryTypeJourneys, ds.perQuery(ds.queryJourneys))
	ds.mux.HandleFunc(models.QueryTypeStatus, ds.perQuery(ds.queryStatus))
	ds.mux.HandleFunc(models.QueryTypeAnomalies, ds.perQuery(ds.queryAnomalies))
	ds.mux.HandleFunc(models.QueryTypeForecast, ds.perQuery(ds.queryForecast))
	ds.mux.HandleFunc(models.QueryTypeAlerts, ds.perQuery(ds.queryAlerts))
	ds.mux.HandleFunc(models.QueryTypeValues, ds.perQuery(ds.queryValues))
	ds.mux.HandleFunc("", ds.perQuery(unknownQueryType))
	ds.resources = ds.newResourceHandler()

	set, err := models.LoadSettings(s)
	if err != nil {
		ds.cfgErr = err
		return ds, nil
	}
	opts, err := s.HTTPClientOptions(ctx)
	if err != nil {
		ds.cfgErr = fmt.Errorf("read the datasource's HTTP options: %w", err)
		return ds, nil
	}
	hc, err := httpclient.New(opts)
	if err != nil {
		ds.cfgErr = fmt.Errorf("build the HTTP client: %w", err)
		return ds, nil
	}
	if ds.api, err = apiclient.New(set.URL, set.APIToken, hc); err != nil {
		ds.cfgErr = err
	}
	return ds, nil
}

// Dispose releases the instance's connections; Grafana calls it after the
// settings change.
func (d *Datasource) Dispose() {
	if d.api != nil {
		d.api.CloseIdleConnections()
	}
}

// QueryData routes each query by its queryType.
func (d *Datasource) QueryData(ctx context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
	return d.mux.QueryData(ctx, req)
}

// queryFunc answers one query; an error becomes that query's error response.
type queryFunc func(ctx context.Context, pc backend.PluginContext, q backend.DataQuery) backend.DataResponse

// perQuery runs fn for every query of a request, so that one bad query
// answers an error in its own response and never fails the request.
func (d *Datasource) perQuery(fn queryFunc) backend.QueryDataHandlerFunc {
	return func(ctx context.Context, req *backend.QueryDataRequest) (*backend.QueryDataResponse, error) {
		resp := backend.NewQueryDataResponse()
		for _, q := range req.Queries {
			if d.cfgErr != nil {
				resp.Responses[q.RefID] = badQuery("the datasource is misconfigured: " + d.cfgErr.Error())
				continue
			}
			attach, refusal := d.liveFor(q)
			if refusal != "" {
				resp.Responses[q.RefID] = badQuery(refusal)
				continue
			}
			r := fn(ctx, req.PluginContext, q)
			if attach != nil && r.Error == nil {
				attach(&r)
			}
			resp.Responses[q.RefID] = r
		}
		return resp, nil
	}
}

func unknownQueryType(_ context.Context, _ backend.PluginContext, q backend.DataQuery) backend.DataResponse {
	return badQuery(fmt.Sprintf("queryType %q is not one this datasource answers; use one of %v", q.QueryType, models.QueryTypes))
}

// badQuery is the answer to a query the plugin cannot run as written; the
// fault is the query's (downstream of the plugin), and msg says the fix.
func badQuery(msg string) backend.DataResponse {
	return backend.ErrDataResponseWithSource(backend.StatusBadRequest, backend.ErrorSourceDownstream, msg)
}

// errResponse turns an error of the API client into a query's error
// response, with the API's own explanation when it gave one.
func errResponse(what string, err error) backend.DataResponse {
	status := apiclient.StatusOf(err)
	switch {
	case status == http.StatusUnauthorized:
		return backend.ErrDataResponseWithSource(backend.StatusUnauthorized, backend.ErrorSourceDownstream,
			what+": the hookstream API refused the token (401); set the datasource's apiToken to the secret of an entry of HOOKSTREAM_API_TOKENS")
	case status == http.StatusForbidden:
		return backend.ErrDataResponseWithSource(backend.StatusForbidden, backend.ErrorSourceDownstream,
			what+": the token's scope does not allow this (403): "+err.Error())
	case status >= 400 && status < 500:
		return backend.ErrDataResponseWithSource(backend.Status(status), backend.ErrorSourceDownstream, what+": "+err.Error())
	case status >= 500:
		return backend.ErrDataResponseWithSource(backend.StatusBadGateway, backend.ErrorSourceDownstream, what+": "+err.Error())
	case ctxDone(err):
		return backend.ErrDataResponseWithSource(backend.StatusTimeout, backend.ErrorSourceDownstream, what+": "+err.Error())
	default:
		return backend.ErrDataResponseWithSource(backend.StatusBadGateway, backend.ErrorSourceDownstream, what+": "+err.Error())
	}
}

func ctxDone(err error) bool {
	return err != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled))
}
