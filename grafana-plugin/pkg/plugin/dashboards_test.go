package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/hookstream/hookstream/grafana-plugin/pkg/models"
)

// The dashboards the plugin ships (src/dashboards, listed in plugin.json's
// includes) are checked twice: their JSON against the rules of Grafana's
// dashboard model that a hand-edit can break, and every query of every
// panel, variable and annotation run through QueryData against the test
// hookstream, as if it were opened when the simulated traffic ended. No
// shipped panel may answer an error or nothing, and the fields a panel's
// options name must be in what it gets.

const dashboardsDir = "../../src/dashboards"

// dashboard is the part of Grafana's dashboard model the checks read.
type dashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Time          struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"time"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Name       string          `json:"name"`
			Datasource *dsRef          `json:"datasource"`
			Target     json.RawMessage `json:"target"`
		} `json:"list"`
	} `json:"annotations"`
	Panels []panel `json:"panels"`
}

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Datasource *dsRef          `json:"datasource"`
	IncludeAll bool            `json:"includeAll"`
	Multi      bool            `json:"multi"`
	Current    struct {
		Value any `json:"value"`
	} `json:"current"`
}

type panel struct {
	ID          int                      `json:"id"`
	Type        string                   `json:"type"`
	Title       string                   `json:"title"`
	Datasource  *dsRef                   `json:"datasource"`
	GridPos     struct{ H, W, X, Y int } `json:"gridPos"`
	Targets     []json.RawMessage        `json:"targets"`
	Options     json.RawMessage          `json:"options"`
	FieldConfig struct {
		Overrides []struct {
			Matcher struct {
				ID      string `json:"id"`
				Options string `json:"options"`
			} `json:"matcher"`
		} `json:"overrides"`
	} `json:"fieldConfig"`
	Panels []panel `json:"panels"` // a collapsed row's
}

// corePanels are the panel types of a Grafana 12 install the dashboards
// may use.
var corePanels = []string{"row", "stat", "timeseries", "table", "logs", "bargauge", "piechart", "gauge", "barchart", "state-timeline", "text"}

// pluginDashboards reads the dashboards plugin.json includes, and fails
// unless they are exactly the files of src/dashboards.
func pluginDashboards(t *testing.T) map[string]dashboard {
	t.Helper()
	raw, err := os.ReadFile("../../src/plugin.json")
	if err != nil {
		t.Fatal(err)
	}
	var pj struct {
		ID       string `json:"id"`
		Includes []struct {
			Type, Name, Path string
		} `json:"includes"`
	}
	if err := json.Unmarshal(raw, &pj); err != nil {
		t.Fatalf("plugin.json: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(dashboardsDir, "*.json"))
	var included []string
	out := map[string]dashboard{}
	for _, inc := range pj.Includes {
		if inc.Type != "dashboard" {
			continue
		}
		included = append(included, filepath.Join(dashboardsDir, strings.TrimPrefix(inc.Path, "dashboards/")))
		raw, err := os.ReadFile(filepath.Join("../../src", inc.Path))
		if err != nil {
			t.Fatalf("plugin.json includes %s: %v", inc.Path, err)
		}
		var d dashboard
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatalf("%s is not a dashboard: %v", inc.Path, err)
		}
		if d.Title != inc.Name {
			t.Errorf("%s: title %q, plugin.json names it %q", inc.Path, d.Title, inc.Name)
		}
		out[inc.Path] = d
	}
	slices.Sort(files)
	slices.Sort(included)
	if !slices.Equal(files, included) {
		t.Errorf("src/dashboards holds %v, plugin.json includes %v", files, included)
	}
	if len(out) != 4 {
		t.Errorf("%d dashboards, want the four (event explorer, journey monitor, analytics, alert center)", len(out))
	}
	return out
}

var varRef = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)

// TestDashboardModel checks what Grafana needs of a dashboard to import
// and draw it.
func TestDashboardModel(t *testing.T) {
	uids := map[string]string{}
	for path, d := range pluginDashboards(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			if d.UID == "" || len(d.UID) > 40 || !regexp.MustCompile(`^[a-zA-Z0-9_-]+$`).MatchString(d.UID) {
				t.Errorf("uid %q: Grafana wants 1 to 40 of [a-zA-Z0-9_-]", d.UID)
			}
			if other, dup := uids[d.UID]; dup {
				t.Errorf("uid %q is also %s's", d.UID, other)
			}
			uids[d.UID] = path
			if d.SchemaVersion < 39 || d.SchemaVersion > 41 {
				t.Errorf("schemaVersion %d; these dashboards are written for 41 (Grafana 12)", d.SchemaVersion)
			}
			vars := map[string]bool{"__interval": true, "__range": true}
			for _, v := range d.Templating.List {
				if vars[v.Name] {
					t.Errorf("variable %s defined twice", v.Name)
				}
				vars[v.Name] = true
				if v.Type == "query" && (v.Datasource == nil || v.Datasource.UID != "${datasource}") {
					t.Errorf("variable %s does not query the dashboard's hookstream datasource", v.Name)
				}
			}
			if !vars["datasource"] {
				t.Error("no datasource variable: the dashboard could not follow the hookstream datasource it is imported with")
			}
			ids := map[int]bool{}
			var cells [][4]int
			for _, p := range allPanels(d.Panels) {
				if ids[p.ID] {
					t.Errorf("panel id %d twice", p.ID)
				}
				ids[p.ID] = true
				if !slices.Contains(corePanels, p.Type) {
					t.Errorf("panel %q: type %q is not a core panel", p.Title, p.Type)
				}
				g := p.GridPos
				if g.W < 1 || g.H < 1 || g.X < 0 || g.X+g.W > 24 {
					t.Errorf("panel %q: gridPos %+v is outside the 24-column grid", p.Title, g)
				}
				for _, c := range cells {
					if g.X < c[0]+c[2] && c[0] < g.X+g.W && g.Y < c[1]+c[3] && c[1] < g.Y+g.H {
						t.Errorf("panel %q overlaps another at %+v", p.Title, c)
					}
				}
				cells = append(cells, [4]int{g.X, g.Y, g.W, g.H})
				if p.Type == "row" {
					continue
				}
				if p.Datasource == nil || p.Datasource.Type != PluginID || p.Datasource.UID != "${datasource}" {
					t.Errorf("panel %q: datasource %+v, want the hookstream datasource variable", p.Title, p.Datasource)
				}
				if len(p.Targets) == 0 {
					t.Errorf("panel %q has no query", p.Title)
				}
				for _, m := range varRef.FindAllStringSubmatch(p.Title+string(mustJSON(p.Targets)), -1) {
					if !vars[m[1]] {
						t.Errorf("panel %q uses $%s, which the dashboard does not define", p.Title, m[1])
					}
				}
			}
		})
	}
}

func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// TestDashboardQueries runs every query of every shipped dashboard.
func TestDashboardQueries(t *testing.T) {
	hs := sharedHookstream(t)
	ds := newTestDatasource(t, hs.apiURL, readSecret)
	// "now" is the end of the simulated traffic.
	now := simStart.Add(mustDuration(simSpan))
	for path, d := range pluginDashboards(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			tr := backend.TimeRange{From: relativeTime(t, now, d.Time.From), To: relativeTime(t, now, d.Time.To)}
			run := func(what string, target json.RawMessage, vars map[string][]string, maxPoints int64) data.Frames {
				t.Helper()
				var q struct {
					RefID     string `json:"refId"`
					QueryType string `json:"queryType"`
					Hide      bool   `json:"hide"`
				}
				js := interpolate(t, target, vars)
				if err := json.Unmarshal(js, &q); err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				if !slices.Contains(models.QueryTypes, q.QueryType) {
					t.Errorf("%s: queryType %q", what, q.QueryType)
					return nil
				}
				resp, err := ds.QueryData(context.Background(), &backend.QueryDataRequest{Queries: []backend.DataQuery{{
					RefID: q.RefID, QueryType: q.QueryType, JSON: js, TimeRange: tr,
					MaxDataPoints: maxPoints, Interval: max(tr.Duration()/time.Duration(maxPoints), time.Second)}}})
				if err != nil {
					t.Fatalf("%s: the request failed: %v", what, err)
				}
				dr := resp.Responses[q.RefID]
				if dr.Error != nil {
					t.Errorf("%s (%s): %v", what, js, dr.Error)
					return nil
				}
				rows := 0
				for _, f := range dr.Frames {
					if !strings.HasSuffix(f.Name, " (live)") { // filled by the stream
						rows += f.Rows()
					}
				}
				if rows == 0 {
					t.Errorf("%s (%s): no data", what, js)
				}
				return dr.Frames
			}

			vars := map[string][]string{}
			for _, v := range d.Templating.List {
				switch v.Type {
				case "datasource":
				case "textbox", "custom":
					vars[v.Name] = []string{fmt.Sprint(v.Current.Value)}
				case "query":
					frames := run("variable "+v.Name, v.Query, vars, 1000)
					var values []string
					for _, f := range frames {
						if fld, i := f.FieldByName("value"); i >= 0 {
							for r := range fld.Len() {
								values = append(values, fmt.Sprint(fld.At(r)))
							}
						}
					}
					if len(values) == 0 {
						t.Fatalf("variable %s has no values", v.Name)
					}
					if !(v.IncludeAll && fmt.Sprint(v.Current.Value) == "[$__all]") {
						values = values[:1] // the first, as Grafana picks it
					}
					vars[v.Name] = values
				default:
					t.Errorf("variable %s: type %s is not checked here", v.Name, v.Type)
				}
			}
			for _, a := range d.Annotations.List {
				if a.Datasource != nil && a.Datasource.Type == PluginID {
					run("annotation "+a.Name, a.Target, vars, 1000)
				}
			}
			for _, p := range allPanels(d.Panels) {
				if p.Type == "row" {
					continue
				}
				var names []string
				for i, target := range p.Targets {
					// a panel is about 80 px per grid column wide
					for _, f := range run(fmt.Sprintf("panel %q query %d", p.Title, i), target, vars, int64(p.GridPos.W*80)) {
						for _, fld := range f.Fields {
							names = append(names, fld.Name)
						}
					}
				}
				checkFieldRefs(t, p, names)
			}
		})
	}
}

// checkFieldRefs fails when a panel's reduce option or override names
// fields that none of its frames has: the panel would draw nothing or
// ignore the override.
func checkFieldRefs(t *testing.T, p panel, names []string) {
	t.Helper()
	var opts struct {
		ReduceOptions struct {
			Fields string `json:"fields"`
		} `json:"reduceOptions"`
	}
	_ = json.Unmarshal(p.Options, &opts)
	refs := []string{opts.ReduceOptions.Fields}
	for _, o := range p.FieldConfig.Overrides {
		if o.Matcher.ID == "byName" || o.Matcher.ID == "byRegexp" {
			refs = append(refs, o.Matcher.Options)
		}
	}
	for _, ref := range refs {
		if ref == "" {
			continue
		}
		match := func(n string) bool { return n == ref }
		if strings.HasPrefix(ref, "/") && strings.HasSuffix(ref, "/") && len(ref) > 1 {
			re, err := regexp.Compile(ref[1 : len(ref)-1])
			if err != nil {
				t.Errorf("panel %q: field matcher %s: %v", p.Title, ref, err)
				continue
			}
			match = re.MatchString
		}
		if !slices.ContainsFunc(names, match) {
			t.Errorf("panel %q: no field matches %s (fields: %v)", p.Title, ref, names)
		}
	}
}

// interpolate replaces the dashboard variables in a query as the
// frontend's applyTemplateVariables does: in a string, the (first) value;
// an array element that is a variable becomes all its values, and empty
// strings leave arrays.
func interpolate(t *testing.T, raw json.RawMessage, vars map[string][]string) []byte {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("query %s: %v", raw, err)
	}
	replace := func(s string) string {
		return varRef.ReplaceAllStringFunc(s, func(m string) string {
			name := varRef.FindStringSubmatch(m)[1]
			if vs, ok := vars[name]; ok && len(vs) > 0 {
				return vs[0]
			}
			return m
		})
	}
	var walk func(any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case string:
			return replace(x)
		case []any:
			out := []any{}
			for _, e := range x {
				if s, ok := e.(string); ok {
					if m := varRef.FindStringSubmatch(s); m != nil && m[0] == s && vars[m[1]] != nil {
						for _, val := range vars[m[1]] {
							out = append(out, val)
						}
						continue
					}
					if s = replace(s); s == "" {
						continue
					}
					out = append(out, s)
					continue
				}
				out = append(out, walk(e))
			}
			return out
		case map[string]any:
			for k, e := range x {
				if k != "datasource" {
					x[k] = walk(e)
				}
			}
			return x
		}
		return v
	}
	return mustJSON(walk(v))
}

// relativeTime reads Grafana's now, now-6h, now+6h.
func relativeTime(t *testing.T, now time.Time, s string) time.Time {
	t.Helper()
	if s == "now" {
		return now
	}
	if rest, ok := strings.CutPrefix(s, "now"); ok && len(rest) > 1 {
		d, err := time.ParseDuration(rest[1:])
		if err == nil && (rest[0] == '-' || rest[0] == '+') {
			if rest[0] == '-' {
				d = -d
			}
			return now.Add(d)
		}
	}
	t.Fatalf("time %q: the dashboards use now, now-<duration> or now+<duration>", s)
	return time.Time{}
}
