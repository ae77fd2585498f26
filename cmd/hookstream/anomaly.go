package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/hookstream/hookstream/anomaly"
	"github.com/hookstream/hookstream/anomaly/nab"
	"github.com/hookstream/hookstream/internal/cli"
	"github.com/peterbourgon/ff/v3/ffcli"
)

func anomalyCommand() *ffcli.Command {
	return &ffcli.Command{
		Name:        "anomaly",
		ShortUsage:  "hookstream anomaly score|eval|backtest [flags]",
		ShortHelp:   "score a series with a detector, measure detectors on the Numenta Anomaly Benchmark (NAB), or backtest forecasts",
		Subcommands: []*ffcli.Command{anomalyScoreCommand(), anomalyEvalCommand(), anomalyBacktestCommand()},
	}
}

// detectorFactory finds a detector by name: hookstream's registered
// detectors first, then NAB's baselines.
func detectorFactory(name string) (anomaly.Factory, error) {
	if slices.Contains(anomaly.Names(), name) {
		return func() anomaly.Detector {
			d, _ := anomaly.New(name) // registered: cannot fail
			return d
		}, nil
	}
	if f, ok := nab.Baseline(name); ok {
		return f, nil
	}
	return nil, cli.Usagef("no detector %q; known: %s", name, strings.Join(allDetectors(), ", "))
}

// allDetectors are the registered detectors, then NAB's baselines.
func allDetectors() []string {
	names := anomaly.Names()
	for _, b := range nab.BaselineNames() {
		if !slices.Contains(names, b) {
			names = append(names, b)
		}
	}
	return names
}

func anomalyScoreCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream anomaly score", flag.ContinueOnError)
	in := fs.String("in", "", "series in NAB's format: a header timestamp,value and one row per point (- for stdin)")
	out := fs.String("out", "", "where to write timestamp,value,anomaly_score (- for stdout)")
	detector := fs.String("detector", anomaly.DefaultDetector, "detector: a registered one or windowed-gaussian (NAB's baseline)")
	return &ffcli.Command{
		Name:       "score",
		ShortUsage: "hookstream anomaly score --in FILE.csv --out SCORES.csv [--detector windowed-gaussian]",
		ShortHelp:  "score every point of a NAB-format series with one detector, online",
		LongHelp: `Reads a series in NAB's format (header timestamp,value; rows such as
2014-04-10 07:15:00,54.2), feeds it to a fresh detector one point at a
time in file order, and writes timestamp,value,anomaly_score: one row per
input row, the timestamp and value as written, the score in [0, 1] at full
precision. A point's score depends only on the points before it.

Detectors: ` + "`hookstream anomaly eval --help`" + ` lists them; windowed-gaussian is
NAB's windowed-Gaussian baseline. The output is written to a temporary file
and renamed into place, so a failure leaves no partial file.`,
		FlagSet: fs,
		Options: envOptions(),
		Exec: func(_ context.Context, args []string) error {
			if len(args) > 0 {
				return cli.Usagef("unexpected argument %q", args[0])
			}
			if *in == "" || *out == "" {
				return cli.Usagef("--in and --out are both required")
			}
			factory, err := detectorFactory(*detector)
			if err != nil {
				return err
			}
			var s nab.Series
			if *in == "-" {
				s, err = nab.ReadCSV(os.Stdin)
				if err != nil {
					err = fmt.Errorf("read stdin: %w", err)
				}
			} else {
				s, err = nab.ReadSeries(*in, filepath.Base(*in))
			}
			if err != nil {
				return err
			}
			d := factory()
			return writeOutput(*out, func(w io.Writer) error {
				bw := bufio.NewWriter(w)
				bw.WriteString("timestamp,value,anomaly_score\n")
				for i, p := range s.Points {
					score := d.Score(p).Score
					fmt.Fprintf(bw, "%s,%s,%s\n", s.Text[i][0], s.Text[i][1], strconv.FormatFloat(score, 'g', -1, 64))
				}
				return bw.Flush()
			})
		},
	}
}

// writeOutput writes to path through a temporary file renamed into place,
// or to stdout for "-".
func writeOutput(path string, write func(io.Writer) error) error {
	if path == "-" {
		return write(os.Stdout)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w; check that its folder exists and is writable", path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, there is nothing to remove
	if err := write(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}

// detectorReport is one detector's result in eval -o json.
type detectorReport struct {
	Detector string `json:"detector"`
	nab.Report
}

func anomalyEvalCommand() *ffcli.Command {
	fs := flag.NewFlagSet("hookstream anomaly eval", flag.ContinueOnError)
	dir := fs.String("nab", "", "NAB-layout folder: data/<category>/<file>.csv and labels/combined_windows.json")
	detectors := fs.String("detector", "", "comma-separated detectors to run (default: every registered detector and windowed-gaussian)")
	out := cli.Output(fs, "table", "json")
	return &ffcli.Command{
		Name:       "eval",
		ShortUsage: "hookstream anomaly eval --nab DIR [--detector windowed-gaussian] [-o table|json]",
		ShortHelp:  "score detectors on a NAB-layout folder with NAB's rules: standard, reward-low-FP and reward-low-FN",
		LongHelp: `Runs a fresh detector over every labelled file of the folder, online, then
scores the anomaly scores as NAB v1.1 does (docs/anomaly.md): the first 15%
of each file (at most 750 rows) is not scored; the earliest detection in a
window earns up to +1 by a scaled sigmoid of its position; a missed window
costs the false-negative weight; a detection outside every window costs
the false-positive weight, less just after a window. Each profile
(standard, reward_low_FP_rate, reward_low_FN_rate) chooses the threshold
that maximises its total over the whole folder; the score is normalised so
that flagging nothing is 0 and flagging every window at its start is 100.
Per category the same threshold is used; a category without windows has
no normalised score (-).

Scores are rounded to 12 significant digits before scoring, as in the
result files behind NAB's published numbers.

Detectors: every registered one (hookstream's) and windowed-gaussian
(NAB's baseline, 22.0 standard on realAWSCloudwatch, realKnownCause and
the two artificial categories by NAB's own result files).`,
		FlagSet: fs,
		Options: envOptions(),
		Exec: func(_ context.Context, args []string) error {
			if len(args) > 0 {
				return cli.Usagef("unexpected argument %q", args[0])
			}
			if *dir == "" {
				return cli.Usagef("--nab is required: a folder with data/ and labels/combined_windows.json, such as anomaly/nab/testdata/nab")
			}
			names := allDetectors()
			if *detectors != "" {
				names = strings.Split(*detectors, ",")
			}
			factories := make([]anomaly.Factory, len(names))
			for i, n := range names {
				f, err := detectorFactory(strings.TrimSpace(n))
				if err != nil {
					return err
				}
				names[i], factories[i] = strings.TrimSpace(n), f
			}
			corpus, err := nab.ReadCorpus(*dir)
			if err != nil {
				return err
			}
			var reports []detectorReport
			for i, f := range factories {
				files, err := nab.Run(corpus, f)
				if err != nil {
					return fmt.Errorf("detector %s: %w", names[i], err)
				}
				r, err := nab.Score(files)
				if err != nil {
					return fmt.Errorf("score detector %s: %w", names[i], err)
				}
				reports = append(reports, detectorReport{Detector: names[i], Report: r})
			}
			if *out == "json" {
				return writeJSON(os.Stdout, reports)
			}
			return printEval(os.Stdout, reports)
		},
	}
}

func printEval(w io.Writer, reports []detectorReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "detector\tcategory\tstandard\treward_low_FP\treward_low_FN\twindows\t\n")
	pct := func(p nab.Percent) string {
		if math.IsNaN(float64(p)) {
			return "-"
		}
		return strconv.FormatFloat(float64(p), 'f', 1, 64)
	}
	for _, r := range reports {
		std := r.Profiles[0]
		for ci, c := range std.Categories {
			fmt.Fprintf(tw, "%s\t%s\t", r.Detector, c.Name)
			for _, p := range r.Profiles {
				fmt.Fprintf(tw, "%s\t", pct(p.Categories[ci].Score))
			}
			fmt.Fprintf(tw, "%d\t\n", c.Windows)
		}
		fmt.Fprintf(tw, "%s\t%s\t", r.Detector, "overall")
		for _, p := range r.Profiles {
			fmt.Fprintf(tw, "%s\t", pct(p.Overall.Score))
		}
		fmt.Fprintf(tw, "%d\t\n", std.Overall.Windows)
		fmt.Fprintf(tw, "%s\t%s\t", r.Detector, "threshold")
		for _, p := range r.Profiles {
			fmt.Fprintf(tw, "%s\t", strconv.FormatFloat(p.Threshold, 'g', -1, 64))
		}
		fmt.Fprintf(tw, "\t\n")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d files, %d rows, %d windows. NAB's published whole-corpus standard scores: Numenta HTM 70.5, windowed Gaussian 39.6 (22.0 on the four categories of anomaly/nab/testdata/nab).\n",
		reports[0].Files, reports[0].Rows, reports[0].Windows)
	return err
}
