package alert

import (
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/windows"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestDefaultRules(t *testing.T) {
	rs, err := DefaultRules(windows.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if rs.GroupWaitDuration != DefaultGroupWait || rs.GroupIntervalDuration != DefaultGroupInterval || rs.RepeatIntervalDuration != DefaultRepeatInterval {
		t.Errorf("timers %v %v %v, want the defaults", rs.GroupWaitDuration, rs.GroupIntervalDuration, rs.RepeatIntervalDuration)
	}
	r := rs.Rules[0]
	if r.Name != "transfer-failures-high" || r.Query.Metric != windows.MetricCount || r.Query.Window != time.Minute ||
		r.Query.Basis != windows.EventTime || len(r.Query.Filter["topic"]) != 1 || *r.Value != 50 || r.ResolveAfterDuration != 2*time.Minute {
		t.Errorf("first rule %+v", r)
	}
	if err := rs.CheckSeries([]string{"volume", "delivery-lag"}); err != nil {
		t.Error(err)
	}
	if _, err := LoadRules("", windows.Config{}); err != nil {
		t.Error(err)
	}
}

func TestParseRules(t *testing.T) {
	rs, err := ParseRules([]byte(`
group_wait: 10s
group_interval: 1m
repeat_interval: 1h
targets:
  - {name: oncall, kind: slack, url: "https://hooks.slack.com/services/T/B/X"}
  - {name: hook, kind: webhook, url: "https://example.com/h", secret: `+secret+`}
rules:
  - name: fails
    kind: threshold
    severity: critical
    labels: {team: payments}
    metric: failures
    window: 5m
    basis: received
    filter: topic=customer_bank_transfer_failed, customer_transfer_failed
    group_by: topic
    op: ">="
    value: 3
    for: 1m
    resolve_after: 5m
    targets: [oncall]
    runbook: https://wiki.example.com/fails
    summary: "{{.Rule}} {{.Labels.topic}}: {{.Value}} {{.Op}} {{.Threshold}}"
  - {name: anom, kind: anomaly, severity: info, series: volume/*, min_score: 0.95}
  - {name: dl, kind: operational, severity: warning, signal: dead_letters_open, op: ">", value: 0}
`), windows.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if rs.GroupWaitDuration != 10*time.Second || rs.GroupIntervalDuration != time.Minute || rs.RepeatIntervalDuration != time.Hour {
		t.Errorf("timers %v %v %v", rs.GroupWaitDuration, rs.GroupIntervalDuration, rs.RepeatIntervalDuration)
	}
	r := rs.Rules[0]
	q := r.Query
	if q.Window != 5*time.Minute || q.Basis != windows.ReceivedTime || q.GroupBy != "topic" ||
		strings.Join(q.Filter["topic"], ",") != "customer_bank_transfer_failed,customer_transfer_failed" {
		t.Errorf("query %+v", q)
	}
	if r.ForDuration != time.Minute || r.ResolveAfterDuration != 5*time.Minute || !r.Op.Holds(3, *r.Value) || r.Op.Holds(2, *r.Value) {
		t.Errorf("rule %+v", r)
	}
	sum, desc, err := r.Render(TemplateData{Rule: r.Name, Labels: map[string]string{"topic": "x"}, Value: 4, Op: r.Op, Threshold: 3})
	if err != nil || sum != "fails x: 4 >= 3" || desc != "" {
		t.Errorf("render = %q, %q, %v", sum, desc, err)
	}
	if ts := rs.TargetsOf(r); len(ts) != 1 || ts[0].Name != "oncall" {
		t.Errorf("targets of fails: %v", ts)
	}
	if ts := rs.TargetsOf(rs.Rules[2]); len(ts) != 2 {
		t.Errorf("a rule naming no target goes to all: got %v", ts)
	}
	a := rs.Rules[1]
	for name, want := range map[string]bool{"volume": false, "volume/family=transfer": true, "volumes": false, "delivery-lag": false} {
		if a.MatchesSeries(name) != want {
			t.Errorf("volume/* matches %q: %v", name, !want)
		}
	}
	if err := rs.CheckSeries([]string{"delivery-lag"}); err == nil || !strings.Contains(err.Error(), "anom") {
		t.Errorf("CheckSeries without volume: %v", err)
	}
}

func TestFilterMapping(t *testing.T) {
	rs, err := ParseRules([]byte(`
rules:
  - {name: a, kind: threshold, severity: info, metric: count, window: 1m, filter: {topic: [x, y]}, op: "<", value: 1}
  - {name: b, kind: threshold, severity: info, metric: count, window: 1m, filter: {family: transfer}, op: "<", value: 1}
`), windows.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if got := rs.Rules[0].Query.Filter["topic"]; strings.Join(got, ",") != "x,y" {
		t.Errorf("filter a %v", got)
	}
	if got := rs.Rules[1].Query.Filter["family"]; strings.Join(got, ",") != "transfer" {
		t.Errorf("filter b %v", got)
	}
}

func TestParseRulesErrors(t *testing.T) {
	const ok = `{name: r, kind: threshold, severity: info, metric: count, window: 1m, op: ">", value: 1`
	for _, tc := range []struct{ name, yaml, want string }{
		{"no rules", `rules: []`, "none listed"},
		{"unknown field", "rules:\n  - " + ok + ", colour: red}", "colour"},
		{"no name", `rules: [{kind: threshold}]`, "alert rule 1: no name"},
		{"duplicate", "rules:\n  - " + ok + "}\n  - " + ok + "}", "alert rule 2 (r): the name is used twice"},
		{"kind", `rules: [{name: r, kind: magic, severity: info}]`, `alert rule 1 (r): kind "magic"`},
		{"severity", `rules: [{name: r, kind: threshold, severity: loud}]`, `severity "loud"`},
		{"no severity", `rules: [{name: r, kind: threshold}]`, "no severity"},
		{"metric", `rules: [{name: r, kind: threshold, severity: info, metric: speed, window: 1m, op: ">", value: 1}]`, "--metric speed: not a metric"},
		{"window", `rules: [{name: r, kind: threshold, severity: info, metric: count, window: 7m, op: ">", value: 1}]`, "--window 7m"},
		{"window syntax", `rules: [{name: r, kind: threshold, severity: info, metric: count, window: soon, op: ">", value: 1}]`, `window "soon" is not a duration`},
		{"filter dim", "rules:\n  - " + ok + ", filter: colour=red}", `"colour" is not a dimension`},
		{"filter two dims", "rules:\n  - " + ok + ", filter: {topic: a, family: b}}", "one dimension at a time"},
		{"group_by", "rules:\n  - " + ok + ", group_by: colour}", "--group-by colour"},
		{"op", `rules: [{name: r, kind: threshold, severity: info, metric: count, window: 1m, op: "=>", value: 1}]`, `op "=>"`},
		{"no value", `rules: [{name: r, kind: threshold, severity: info, metric: count, window: 1m, op: ">"}]`, "no value"},
		{"for", "rules:\n  - " + ok + ", for: later}", `alert rule 1 (r): for "later"`},
		{"resolve_after", "rules:\n  - " + ok + ", resolve_after: -1m}", `resolve_after "-1m"`},
		{"template syntax", "rules:\n  - " + ok + `, summary: "{{.Value"}`, "summary:"},
		{"template field", "rules:\n  - " + ok + `, description: "{{.Vaule}}"}`, "description:"},
		{"runbook", "rules:\n  - " + ok + ", runbook: wiki/page}", `runbook "wiki/page"`},
		{"label", "rules:\n  - " + ok + ", labels: {\"a-b\": x}}", `label "a-b"`},
		{"unknown target", "rules:\n  - " + ok + ", targets: [nowhere]}", `alert rule 1 (r): target "nowhere": no such target`},
		{"misplaced field", `rules: [{name: r, kind: threshold, severity: info, metric: count, window: 1m, op: ">", value: 1, series: x}]`, "not series"},
		{"anomaly no series", `rules: [{name: r, kind: anomaly, severity: info}]`, "no series"},
		{"anomaly star", `rules: [{name: r, kind: anomaly, severity: info, series: "a*b"}]`, "* may only end"},
		{"anomaly score", `rules: [{name: r, kind: anomaly, severity: info, series: x, min_score: 2}]`, "min_score 2"},
		{"anomaly op", `rules: [{name: r, kind: anomaly, severity: info, series: x, op: ">"}]`, "an anomaly rule takes"},
		{"signal", `rules: [{name: r, kind: operational, severity: info, signal: cpu, op: ">", value: 1}]`, `signal "cpu"`},
		{"no signal", `rules: [{name: r, kind: operational, severity: info, op: ">", value: 1}]`, "no signal"},
		{"operational metric", `rules: [{name: r, kind: operational, severity: info, signal: spool_depth, metric: count, op: ">", value: 1}]`, "an operational rule takes"},
		{"target kind", "targets: [{name: t, kind: email, url: \"https://x\"}]\nrules:\n  - " + ok + "}", `alert target 1 (t): kind "email"`},
		{"target dup", "targets: [{name: t, kind: slack, url: \"https://x\"}, {name: t, kind: slack, url: \"https://y\"}]\nrules:\n  - " + ok + "}", "alert target 2 (t): the name is used twice"},
		{"target url", "targets: [{name: t, kind: slack, url: \"hooks.slack.com/x\"}]\nrules:\n  - " + ok + "}", "alert target 1 (t): url: want an absolute"},
		{"target no url", "targets: [{name: t, kind: slack}]\nrules:\n  - " + ok + "}", "alert target 1 (t): no url"},
		{"webhook no secret", "targets: [{name: t, kind: webhook, url: \"https://x\"}]\nrules:\n  - " + ok + "}", "alert target 1 (t): no secret"},
		{"webhook short secret", "targets: [{name: t, kind: webhook, url: \"https://x\", secret: whsec_c2hvcnQ=}]\nrules:\n  - " + ok + "}", "the key is 5 bytes"},
		{"webhook bad base64", "targets: [{name: t, kind: webhook, url: \"https://x\", secret: \"whsec_!!\"}]\nrules:\n  - " + ok + "}", "standard base64"},
		{"slack secret", "targets: [{name: t, kind: slack, url: \"https://x\", secret: " + secret + "}]\nrules:\n  - " + ok + "}", "takes no secret"},
		{"repeat < group", "group_interval: 10m\nrepeat_interval: 5m\nrules:\n  - " + ok + "}", "repeat_interval 5m0s is shorter"},
		{"group_wait", "group_wait: soon\nrules:\n  - " + ok + "}", `group_wait "soon"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRules([]byte(tc.yaml), windows.Config{})
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestOpHolds(t *testing.T) {
	for _, tc := range []struct {
		op   Op
		v, x float64
		want bool
	}{
		{">", 2, 1, true}, {">", 1, 1, false},
		{">=", 1, 1, true}, {">=", 0, 1, false},
		{"<", 0, 1, true}, {"<", 1, 1, false},
		{"<=", 1, 1, true}, {"<=", 2, 1, false},
		{"==", 1, 1, true}, {"==", 2, 1, false},
		{"!=", 2, 1, true}, {"!=", 1, 1, false},
		{"~", 1, 1, false},
	} {
		if got := tc.op.Holds(tc.v, tc.x); got != tc.want {
			t.Errorf("%g %s %g = %v, want %v", tc.v, tc.op, tc.x, got, tc.want)
		}
	}
}
