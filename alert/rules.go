// Package alert turns window metrics, anomalies and operational signals
// into notifications on Slack and on signed webhooks (issue 13).
//
// This file holds the rules file: its format, the built-in default set
// (alert/rules.yaml) and its validation. Nothing here reads a database or
// the network; the evaluator and the notifier build on it.
package alert

import (
	"bytes"
	_ "embed"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hookstream/hookstream/windows"
)

// Kind is what a rule watches.
type Kind string

const (
	KindThreshold   Kind = "threshold"   // a window metric compared with a value
	KindAnomaly     Kind = "anomaly"     // an anomaly on a watched series
	KindOperational Kind = "operational" // hookstream's own health (see Signal)
)

// Severity is how urgent a rule's alerts are.
type Severity string

const (
	SeverityCritical Severity = "critical"
	SeverityWarning  Severity = "warning"
	SeverityInfo     Severity = "info"
)

// Signal is an operational measurement an operational rule compares.
type Signal string

// Operational signals and their units.
const (
	SignalDeadLetters        Signal = "dead_letters_open"           // dead letters not yet replayed or dropped
	SignalConsumerLag        Signal = "consumer_lag"                // stream entries not yet processed, over all consumer groups
	SignalOldestPendingAge   Signal = "oldest_pending_age"          // seconds the oldest pending (claimed, unacknowledged) entry has waited
	SignalIngestRejections   Signal = "ingest_rejections"           // webhooks rejected by ingest (bad signature, bad body) per minute
	SignalIngest503s         Signal = "ingest_503s"                 // ingest answers 503 per minute
	SignalSpoolDepth         Signal = "spool_depth"                 // webhooks spooled on disk, waiting for the stream
	SignalJourneysAbandoned  Signal = "journeys_abandoned_per_hour" // journey instances abandoned in the last hour
	SignalReconcileGaps      Signal = "reconcile_gaps"              // events at Dwolla the last complete reconciliation could not recover
	SignalSubscriptionPaused Signal = "dwolla_subscriptions_paused" // webhook subscriptions Dwolla has paused, as the last reconciliation saw
)

// Signals lists every operational signal.
var Signals = []Signal{SignalDeadLetters, SignalConsumerLag, SignalOldestPendingAge, SignalIngestRejections,
	SignalIngest503s, SignalSpoolDepth, SignalJourneysAbandoned, SignalReconcileGaps, SignalSubscriptionPaused}

// Op compares a measured value (left) with a rule's value (right).
type Op string

// Ops lists every comparison.
var Ops = []Op{">", ">=", "<", "<=", "==", "!="}

// Holds says whether "v op value" is true. An unknown op never holds.
func (op Op) Holds(v, value float64) bool {
	switch op {
	case ">":
		return v > value
	case ">=":
		return v >= value
	case "<":
		return v < value
	case "<=":
		return v <= value
	case "==":
		return v == value
	case "!=":
		return v != value
	}
	return false
}

// TargetKind is how a target is notified.
type TargetKind string

const (
	TargetSlack   TargetKind = "slack"   // a Slack incoming webhook (url)
	TargetWebhook TargetKind = "webhook" // JSON signed the Standard Webhooks way (url, secret)
)

// Rule is one alerting rule. The fields after the YAML ones are set by
// validation.
type Rule struct {
	Name        string            `yaml:"name"`
	Kind        Kind              `yaml:"kind"`
	Severity    Severity          `yaml:"severity"`
	Labels      map[string]string `yaml:"labels"`
	Summary     string            `yaml:"summary"`     // text/template over TemplateData
	Description string            `yaml:"description"` // text/template over TemplateData
	Runbook     string            `yaml:"runbook"`     // an http(s) URL
	Targets     []string          `yaml:"targets"`     // target names; none: every target

	// threshold
	Metric  string    `yaml:"metric"`
	Window  string    `yaml:"window"`
	Basis   string    `yaml:"basis"`
	Filter  yaml.Node `yaml:"filter"` // "dim=v1,v2" or {dim: [v1, v2]}
	GroupBy string    `yaml:"group_by"`

	// anomaly
	Series   string  `yaml:"series"`    // a watched series name, or a prefix ending in *
	MinScore float64 `yaml:"min_score"` // 0: the series' own threshold

	// operational
	Signal Signal `yaml:"signal"`

	// threshold and operational
	Op    Op       `yaml:"op"`
	Value *float64 `yaml:"value"`

	// every kind
	For          string `yaml:"for"`           // how long the condition must hold before firing (default 0s)
	ResolveAfter string `yaml:"resolve_after"` // how long it must stay clear before resolving (default 0s)

	// Query is the threshold rule's metric query, normalised, without a
	// time range: the evaluator sets From and To.
	Query windows.MetricQuery `yaml:"-"`
	// ForDuration and ResolveAfterDuration are For and ResolveAfter parsed.
	ForDuration          time.Duration `yaml:"-"`
	ResolveAfterDuration time.Duration `yaml:"-"`

	summary, description *template.Template
}

// Target is a place notifications go.
type Target struct {
	Name   string     `yaml:"name"`
	Kind   TargetKind `yaml:"kind"`
	URL    string     `yaml:"url"`
	Secret string     `yaml:"secret"` // webhook: whsec_<base64> or the raw secret (see ParseSecret)
}

// Rules is a validated rules file.
type Rules struct {
	// GroupWait is how long a new group of alerts waits before its first
	// notification (default 30s); GroupInterval how often a group is
	// notified of changes (default 5m); RepeatInterval how often what stays
	// firing is notified again (default 4h, at least GroupInterval).
	GroupWait      string `yaml:"group_wait"`
	GroupInterval  string `yaml:"group_interval"`
	RepeatInterval string `yaml:"repeat_interval"`

	Rules   []*Rule   `yaml:"rules"`
	Targets []*Target `yaml:"targets"`

	GroupWaitDuration      time.Duration `yaml:"-"`
	GroupIntervalDuration  time.Duration `yaml:"-"`
	RepeatIntervalDuration time.Duration `yaml:"-"`
}

// Defaults of the top-level timers (those of Alertmanager and Grafana).
const (
	DefaultGroupWait      = 30 * time.Second
	DefaultGroupInterval  = 5 * time.Minute
	DefaultRepeatInterval = 4 * time.Hour
)

//go:embed rules.yaml
var defaultRules []byte

// DefaultRules is the built-in set (alert/rules.yaml).
func DefaultRules(wcfg windows.Config) (*Rules, error) { return ParseRules(defaultRules, wcfg) }

// LoadRules reads a rules file ("" for the built-in set), validated against
// the windows configuration the processors run with.
func LoadRules(path string, wcfg windows.Config) (*Rules, error) {
	if path == "" {
		return DefaultRules(wcfg)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the alert rules file: %w; check --alert-rules or HOOKSTREAM_ALERT_RULES", err)
	}
	rs, err := ParseRules(b, wcfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rs, nil
}

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// ParseRules parses and validates a rules file's contents. Errors name the
// rule or target (by position and name) and say what is wrong.
func ParseRules(b []byte, wcfg windows.Config) (*Rules, error) {
	var rs Rules
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&rs); err != nil {
		return nil, fmt.Errorf("alert rules: %w", err)
	}
	var err error
	if rs.GroupWaitDuration, err = duration("alert rules: group_wait", rs.GroupWait, DefaultGroupWait); err != nil {
		return nil, err
	}
	if rs.GroupIntervalDuration, err = duration("alert rules: group_interval", rs.GroupInterval, DefaultGroupInterval); err != nil {
		return nil, err
	}
	if rs.RepeatIntervalDuration, err = duration("alert rules: repeat_interval", rs.RepeatInterval, DefaultRepeatInterval); err != nil {
		return nil, err
	}
	if rs.GroupIntervalDuration <= 0 {
		return nil, fmt.Errorf("alert rules: group_interval %s: must be more than 0s", rs.GroupInterval)
	}
	if rs.RepeatIntervalDuration < rs.GroupIntervalDuration {
		return nil, fmt.Errorf("alert rules: repeat_interval %s is shorter than group_interval %s: reminders are sent on group_interval ticks",
			rs.RepeatIntervalDuration, rs.GroupIntervalDuration)
	}

	targets := map[string]bool{}
	for i, t := range rs.Targets {
		if t == nil {
			return nil, fmt.Errorf("alert target %d: an empty entry (a lone '-' or ~ under targets:)", i+1)
		}
		if err := t.validate(i, targets); err != nil {
			return nil, err
		}
		targets[t.Name] = true
	}
	if len(rs.Rules) == 0 {
		return nil, fmt.Errorf("alert rules: none listed under rules:")
	}
	seen := map[string]bool{}
	for i, r := range rs.Rules {
		if r == nil {
			return nil, fmt.Errorf("alert rule %d: an empty entry (a lone '-' or ~ under rules:)", i+1)
		}
		if r.Name == "" {
			return nil, fmt.Errorf("alert rule %d: no name", i+1)
		}
		where := fmt.Sprintf("alert rule %d (%s)", i+1, r.Name)
		if seen[r.Name] {
			return nil, fmt.Errorf("%s: the name is used twice", where)
		}
		seen[r.Name] = true
		if err := r.validate(wcfg, targets); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
	}
	return &rs, nil
}

// duration parses a duration field, "" being def.
func duration(where, s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s %q: not a duration such as 30s or 5m", where, s)
	}
	return d, nil
}

func (t *Target) validate(i int, seen map[string]bool) error {
	if t.Name == "" {
		return fmt.Errorf("alert target %d: no name", i+1)
	}
	where := fmt.Sprintf("alert target %d (%s)", i+1, t.Name)
	if seen[t.Name] {
		return fmt.Errorf("%s: the name is used twice", where)
	}
	switch t.Kind {
	case TargetSlack:
		if t.Secret != "" {
			return fmt.Errorf("%s: a slack target takes no secret (the URL is the secret)", where)
		}
	case TargetWebhook:
		if t.Secret == "" {
			return fmt.Errorf("%s: no secret: a webhook target signs what it sends; give whsec_<base64> of 24 to 64 random bytes", where)
		}
		if _, err := ParseSecret(t.Secret); err != nil {
			return fmt.Errorf("%s: secret: %w", where, err)
		}
	case "":
		return fmt.Errorf("%s: no kind; use slack or webhook", where)
	default:
		return fmt.Errorf("%s: kind %q: use slack or webhook", where, t.Kind)
	}
	if t.URL == "" {
		return fmt.Errorf("%s: no url", where)
	}
	if err := checkURL(t.URL); err != nil {
		// Do not repeat the URL: a Slack webhook URL is a secret.
		return fmt.Errorf("%s: url: %w", where, err)
	}
	return nil
}

// checkURL says whether s is an absolute http or https URL.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want an absolute http:// or https:// URL")
	}
	return nil
}

func (r *Rule) validate(wcfg windows.Config, targets map[string]bool) error {
	switch r.Severity {
	case SeverityCritical, SeverityWarning, SeverityInfo:
	case "":
		return fmt.Errorf("no severity; use critical, warning or info")
	default:
		return fmt.Errorf("severity %q: use critical, warning or info", r.Severity)
	}
	for k := range r.Labels {
		if !labelName.MatchString(k) {
			return fmt.Errorf("label %q: a label name is letters, digits and _, not starting with a digit", k)
		}
	}
	var err error
	if r.summary, err = parseTemplate("summary", r.Summary); err != nil {
		return err
	}
	if r.description, err = parseTemplate("description", r.Description); err != nil {
		return err
	}
	if r.Runbook != "" {
		if err := checkURL(r.Runbook); err != nil {
			return fmt.Errorf("runbook %q: %w", r.Runbook, err)
		}
	}
	for i, t := range r.Targets {
		if !targets[t] {
			return fmt.Errorf("target %q: no such target under targets:", t)
		}
		if slices.Contains(r.Targets[:i], t) {
			return fmt.Errorf("target %q is named twice", t)
		}
	}
	if r.ForDuration, err = duration("for", r.For, 0); err != nil {
		return err
	}
	if r.ResolveAfterDuration, err = duration("resolve_after", r.ResolveAfter, 0); err != nil {
		return err
	}

	// Fields of the other kinds must be absent, so that a misplaced field
	// is not silently ignored.
	threshold := r.Metric != "" || r.Window != "" || r.Basis != "" || r.Filter.Kind != 0 || r.GroupBy != ""
	anomaly := r.Series != "" || r.MinScore != 0
	compare := r.Op != "" || r.Value != nil
	switch r.Kind {
	case KindThreshold:
		if anomaly || r.Signal != "" {
			return fmt.Errorf("a threshold rule takes metric, window, basis, filter, group_by, op and value, not series, min_score or signal")
		}
		if err := r.validateThreshold(wcfg); err != nil {
			return err
		}
		return r.validateCompare()
	case KindAnomaly:
		if threshold || compare || r.Signal != "" {
			return fmt.Errorf("an anomaly rule takes series and min_score, not metric, window, basis, filter, group_by, signal, op or value")
		}
		return r.validateAnomaly()
	case KindOperational:
		if threshold || anomaly {
			return fmt.Errorf("an operational rule takes signal, op and value, not metric, window, basis, filter, group_by, series or min_score")
		}
		if r.Signal == "" {
			return fmt.Errorf("no signal; use %s", signalNames())
		}
		if !slices.Contains(Signals, r.Signal) {
			return fmt.Errorf("signal %q: use %s", r.Signal, signalNames())
		}
		return r.validateCompare()
	case "":
		return fmt.Errorf("no kind; use threshold, anomaly or operational")
	default:
		return fmt.Errorf("kind %q: use threshold, anomaly or operational", r.Kind)
	}
}

func signalNames() string {
	names := make([]string, len(Signals))
	for i, s := range Signals {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

func (r *Rule) validateCompare() error {
	if r.Op == "" {
		return fmt.Errorf(`no op; use one of > >= < <= == != (quoted in YAML: op: ">")`)
	}
	if !slices.Contains(Ops, r.Op) {
		return fmt.Errorf("op %q: use one of > >= < <= == !=", r.Op)
	}
	if r.Value == nil {
		return fmt.Errorf("no value to compare with (op %s)", r.Op)
	}
	return nil
}

func (r *Rule) validateThreshold(wcfg windows.Config) error {
	if r.Metric == "" {
		return fmt.Errorf("no metric: a threshold rule needs one (count, failures, failure_ratio, lag_p99, ...)")
	}
	if r.Window == "" {
		return fmt.Errorf("no window: a threshold rule needs a window size")
	}
	size, err := time.ParseDuration(r.Window)
	if err != nil {
		return fmt.Errorf("window %q is not a duration such as 5m", r.Window)
	}
	q := windows.MetricQuery{Window: size, Basis: windows.Basis(r.Basis), Metric: windows.Metric(r.Metric), GroupBy: r.GroupBy}
	if q.Filter, err = parseFilter(&r.Filter); err != nil {
		return err
	}
	// Validate with a range of one window: it checks everything else.
	probe := q
	probe.From, probe.To = time.Unix(0, 0), time.Unix(0, 0).Add(size)
	if err := probe.Validate(wcfg); err != nil {
		return err
	}
	q.Basis, q.Filter, q.GroupBy = probe.Basis, probe.Filter, probe.GroupBy
	r.Query = q
	return nil
}

// parseFilter reads a filter given either as windows.ParseFilter's string
// (topic=a,b) or as a mapping of one dimension to a value or a list of
// values ({topic: [a, b]}).
func parseFilter(n *yaml.Node) (map[string][]string, error) {
	switch n.Kind {
	case 0:
		return nil, nil
	case yaml.ScalarNode:
		return windows.ParseFilter(n.Value)
	case yaml.MappingNode:
		f := map[string][]string{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			switch v.Kind {
			case yaml.ScalarNode:
				f[k.Value] = append(f[k.Value], v.Value)
			case yaml.SequenceNode:
				for _, e := range v.Content {
					if e.Kind != yaml.ScalarNode {
						return nil, fmt.Errorf("filter %s (line %d): values must be plain strings", k.Value, e.Line)
					}
					f[k.Value] = append(f[k.Value], e.Value)
				}
			default:
				return nil, fmt.Errorf("filter %s (line %d): want a value or a list of values", k.Value, v.Line)
			}
		}
		return f, nil
	}
	return nil, fmt.Errorf("filter (line %d): want dimension=value[,value...] or {dimension: [values]}", n.Line)
}

func (r *Rule) validateAnomaly() error {
	if r.Series == "" {
		return fmt.Errorf("no series: name a watched series (volume), one of its instances (volume/family=transfer) or a prefix ending in * (volume/*, or * for all)")
	}
	if i := strings.Index(r.Series, "*"); i >= 0 && i != len(r.Series)-1 {
		return fmt.Errorf("series %q: * may only end a prefix", r.Series)
	}
	if r.MinScore < 0 || r.MinScore > 1 {
		return fmt.Errorf("min_score %g: want a score in (0, 1], or none for the series' own threshold", r.MinScore)
	}
	return nil
}

// MatchesSeries says whether an anomaly rule watches the series instance
// name (as the anomaly package names them: volume, or with group_by
// volume/family=transfer). Series "volume" matches both of these; a series
// ending in * matches every name with that prefix.
func (r *Rule) MatchesSeries(name string) bool {
	if p, ok := strings.CutSuffix(r.Series, "*"); ok {
		return strings.HasPrefix(name, p)
	}
	return name == r.Series || strings.HasPrefix(name, r.Series+"/")
}

// CheckSeries says which anomaly rule names no series in watched (the
// names of the watched series, anomaly.Watch's Series[i].Name): a rule
// that can never fire. Prefix rules are checked for a match too.
func (rs *Rules) CheckSeries(watched []string) error {
	for i, r := range rs.Rules {
		if r.Kind != KindAnomaly {
			continue
		}
		ok := false
		for _, w := range watched {
			// A watched series named w has instances w and w/<dim>=<value>.
			if r.MatchesSeries(w) || r.MatchesSeries(w+"/") || strings.HasPrefix(r.Series, w+"/") {
				ok = true
				break
			}
		}
		if !ok {
			return fmt.Errorf("alert rule %d (%s): series %q: no watched series matches; watched are %s",
				i+1, r.Name, r.Series, strings.Join(watched, ", "))
		}
	}
	return nil
}

// TemplateData is what summary and description templates see, for
// example {{.Rule}} on {{.Labels.topic}}: {{.Value}} {{.Op}} {{.Threshold}}.
type TemplateData struct {
	Rule      string
	Severity  Severity
	Labels    map[string]string
	Value     float64 // the measured value (anomaly: the series' value)
	Op        Op      // threshold and operational
	Threshold float64 // threshold and operational: the rule's value
	Score     float64 // anomaly: the anomaly score
	Expected  string  // anomaly: the expected range, as text
	Window    string  // threshold and anomaly: the window size
	Metric    string  // threshold: the metric; anomaly: the series
	Signal    Signal  // operational
}

func parseTemplate(name, text string) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=zero").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	// Run it once on sample data: that finds fields TemplateData lacks
	// ({{.Vaule}}), which parsing alone does not.
	sample := TemplateData{Labels: map[string]string{}}
	if err := t.Execute(&strings.Builder{}, sample); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return t, nil
}

// Render executes the rule's summary and description templates on d.
// Either is "" when the rule has none.
func (r *Rule) Render(d TemplateData) (summary, description string, err error) {
	var b strings.Builder
	if r.summary != nil {
		if err := r.summary.Execute(&b, d); err != nil {
			return "", "", fmt.Errorf("alert rule %s: summary: %w", r.Name, err)
		}
		summary = b.String()
	}
	if r.description != nil {
		b.Reset()
		if err := r.description.Execute(&b, d); err != nil {
			return "", "", fmt.Errorf("alert rule %s: description: %w", r.Name, err)
		}
		description = b.String()
	}
	return summary, description, nil
}

// TargetsOf lists the targets a rule's notifications go to: those it
// names, or every target when it names none.
func (rs *Rules) TargetsOf(r *Rule) []*Target {
	if len(r.Targets) == 0 {
		return rs.Targets
	}
	var ts []*Target
	for _, t := range rs.Targets {
		if slices.Contains(r.Targets, t.Name) {
			ts = append(ts, t)
		}
	}
	return ts
}
