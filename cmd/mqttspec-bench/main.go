// Command mqttspec-bench measures the library against the ceilings it
// runs on, side by side on one machine, in one run.
//
// It starts, each in a process of its own: bare Mochi answering every
// request from an inline handler (the embedded ceiling), the library with
// its embedded broker on GORM and SQLite (as the README's quick start),
// and, when mosquitto is installed, a private mosquitto with a paho client
// answering every request (the external ceiling) and the library in
// external mode on it. Then it runs the same load against each in turn and
// prints requests per second, the library's share of its ceiling, latency
// percentiles and the CPU each process spent per request, as a table and,
// with -json, as JSON.
//
//	go run ./cmd/mqttspec-bench                       # the whole matrix, 3 s a run
//	go run ./cmd/mqttspec-bench -scenarios read -qos 1 -runs 3 -duration 5s
//	go run ./cmd/mqttspec-bench -cpuprofile /tmp/embedded.prof -scenarios read
//
// Loads: read (by id), read-light (one request in flight per client), list
// (filter, limit 10, with total), create, update, mix (8 reads, 1 update, 1
// create in 10), fanout (100 subscribers, 2 writers creating records half
// of the subscribers match). Creates are also compared with GORM inserting
// on the same SQLite file from as many goroutines as the load keeps
// requests in flight. Before the loads, -idle connections (10,000) are
// held open against the Mochi echo and the embedded library, each
// subscribed to its two topics and silent, and each server's heap,
// goroutine stacks and resident memory per connection are reported.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/mqttspec/mqttspec/internal/testbroker"
	"github.com/mqttspec/mqttspec/internal/testdb"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		if err := serve(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "mqttspec-bench serve:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mqttspec-bench:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	duration, warmup time.Duration
	runs             int
	scenarios, qos   []string
	external         []string
	rows             int
	jsonPath         string
	cpuprofile       string
	groups           []int    // members per group run (external, PostgreSQL)
	groupScenarios   []string // loads of the group runs
	idle             int      // idle connections held against each embedded target
}

func parseFlags() options {
	var o options
	var scen, qos, ext string
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "measured time of each run")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "load before each measured window")
	flag.IntVar(&o.runs, "runs", 1, "runs of each pair; the median by rate is reported")
	flag.StringVar(&scen, "scenarios", "read,read-light,list,create,update,mix,fanout", "loads against the embedded broker")
	flag.StringVar(&ext, "external", "read,read-light", "loads against mosquitto (\"\" for none)")
	flag.StringVar(&qos, "qos", "1,0", "QoS levels of requests and answers")
	flag.IntVar(&o.rows, "rows", 10000, "users stored before the load")
	flag.StringVar(&o.jsonPath, "json", "", "also write the results as JSON to this file")
	flag.IntVar(&o.idle, "idle", 10000, "idle connections held against the Mochi echo and the embedded library, for memory (0 for none; the library refuses more than its default MaxConnections, 10,000)")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the embedded library's process here (and of the external one to this path + \".external\")")
	var groups, groupScen string
	flag.StringVar(&groups, "group", "", "members of each group run on mosquitto and PostgreSQL, e.g. 1,2,3 (\"\" for none)")
	flag.StringVar(&groupScen, "group-scenarios", "read,create", "loads of the group runs")
	flag.Parse()
	split := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, ",")
	}
	o.scenarios, o.qos, o.external = split(scen), split(qos), split(ext)
	o.groupScenarios = split(groupScen)
	for _, g := range split(groups) {
		var n int
		if _, err := fmt.Sscan(g, &n); err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "mqttspec-bench: -group %q: want counts of members\n", groups)
			os.Exit(2)
		}
		o.groups = append(o.groups, n)
	}
	return o
}

// result is one target's outcome in one scenario.
type result struct {
	Scenario string             `json:"scenario"`
	QoS      byte               `json:"qos"`
	Target   string             `json:"target"`
	Ceiling  string             `json:"ceiling,omitempty"`
	Rate     float64            `json:"requests_per_second"`
	Notes    float64            `json:"notifications_per_second,omitempty"`
	Ratio    float64            `json:"ratio_of_ceiling,omitempty"`
	P50      float64            `json:"p50_ms"`
	P99      float64            `json:"p99_ms"`
	Max      float64            `json:"max_ms"`
	Failures int                `json:"failures"`
	CPU      map[string]float64 `json:"cpu_us_per_request,omitempty"`
	// The idle load: connections held and what the server holds for each.
	IdleConns         int     `json:"idle_connections,omitempty"`
	HeapPerConn       float64 `json:"heap_bytes_per_connection,omitempty"`
	StacksPerConn     float64 `json:"stack_bytes_per_connection,omitempty"`
	RSSPerConn        float64 `json:"resident_bytes_per_connection,omitempty"`
	GoroutinesPerConn float64 `json:"goroutines_per_connection,omitempty"`
}

// target is something the load runs against.
type target struct {
	name   string
	addr   string
	prefix string         // first topic level
	procs  map[string]int // process name -> pid, for CPU
	// library targets answer subscription requests (fanout).
	library bool
	srv     *server // the process answering "reset" (library) and "mem"
}

func run() error {
	o := parseFlags()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	self := os.Getpid()

	var stops []func()
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}()
	start := func(name, kind string, args ...string) (*server, error) {
		s, err := startServer(ctx, name, kind, args...)
		if err != nil {
			return nil, err
		}
		stops = append(stops, s.stop)
		return s, nil
	}
	rows := fmt.Sprint(o.rows)
	echoSrv, err := start("mochi-echo", "echo")
	if err != nil {
		return err
	}
	embArgs := []string{"-rows", rows}
	if o.cpuprofile != "" {
		embArgs = append(embArgs, "-cpuprofile", o.cpuprofile)
	}
	embSrv, err := start("embedded", "embedded", embArgs...)
	if err != nil {
		return err
	}
	echoT := &target{name: "mochi-echo", addr: echoSrv.addr, prefix: "spec", procs: map[string]int{"server": echoSrv.pid(), "load": self}, srv: echoSrv}
	embT := &target{name: "embedded", addr: embSrv.addr, prefix: "spec", procs: map[string]int{"server": embSrv.pid(), "load": self}, library: true, srv: embSrv}

	var pahoT, extT *target
	var mosqURL string
	var mosqPID int
	if len(o.external) > 0 || len(o.groups) > 0 {
		dir, err := os.MkdirTemp("", "mqttspec-bench-mosquitto-")
		if err != nil {
			return err
		}
		stops = append(stops, func() { _ = os.RemoveAll(dir) })
		mosq, err := testbroker.Launch(dir, "")
		if err != nil {
			fmt.Fprintln(os.Stderr, "mqttspec-bench: no external runs:", err)
			o.external = nil
		} else {
			stops = append(stops, mosq.Stop)
			// The echo answers under its own prefix: both listen on one broker.
			pahoSrv, err := start("paho-echo", "paho-echo", "-broker", mosq.URL, "-prefix", "echo")
			if err != nil {
				return err
			}
			pahoT = &target{name: "paho-echo", addr: mosq.Addr, prefix: "echo", procs: map[string]int{"server": pahoSrv.pid(), "broker": mosq.PID(), "load": self}}
			if len(o.external) > 0 { // not beside a group: both would answer spec/+/request
				extArgs := []string{"-broker", mosq.URL, "-rows", rows}
				if o.cpuprofile != "" {
					extArgs = append(extArgs, "-cpuprofile", o.cpuprofile+".external")
				}
				extSrv, err := start("external", "external", extArgs...)
				if err != nil {
					return err
				}
				extT = &target{name: "external", addr: mosq.Addr, prefix: "spec", procs: map[string]int{"server": extSrv.pid(), "broker": mosq.PID(), "load": self}, library: true, srv: extSrv}
			}
			mosqURL, mosqPID = mosq.URL, mosq.PID()
		}
	}

	var results []result
	if o.idle > 0 { // first, while nothing else is connected
		for _, t := range []*target{echoT, embT} {
			r, err := measureIdle(ctx, o.idle, t)
			if err != nil {
				return err
			}
			results = append(results, r)
		}
	}
	pair := func(name string, qos byte, ceiling, lib *target) error {
		sc, ok := scenarios[name]
		if !ok {
			return fmt.Errorf("unknown scenario %q", name)
		}
		c, l, err := measurePair(ctx, o, sc, qos, ceiling, lib)
		if err != nil {
			return fmt.Errorf("%s at QoS %d: %w", name, qos, err)
		}
		results = append(results, c, l)
		if name == "create" {
			b, err := bareInsert(o, sc, qos, lib)
			if err != nil {
				return err
			}
			// A create's ceiling is the ORM inserting on its own.
			results[len(results)-1].Ceiling = b.Target
			results[len(results)-1].Ratio = l.Rate / b.Rate
			results = append(results, b)
			report(b)
		}
		return nil
	}
	for _, q := range o.qos {
		qos := byte(q[0] - '0')
		for _, name := range o.scenarios {
			if err := pair(name, qos, echoT, embT); err != nil {
				return err
			}
		}
		for _, name := range o.external {
			if err := pair(name, qos, pahoT, extT); err != nil {
				return err
			}
		}
	}
	if len(o.groups) > 0 && pahoT == nil {
		fmt.Fprintln(os.Stderr, "mqttspec-bench: no group runs without mosquitto")
		o.groups = nil
	}
	if len(o.groups) > 0 {
		defer testdb.StopPostgres()
	}
	for _, n := range o.groups {
		t, stop, err := startGroup(ctx, n, mosqURL, mosqPID, o.rows, self)
		if err != nil {
			return err
		}
		for _, q := range o.qos {
			qos := byte(q[0] - '0')
			for _, name := range o.groupScenarios {
				if err := pair(name, qos, pahoT, t); err != nil {
					stop()
					return err
				}
			}
		}
		stop()
	}
	fmt.Println()
	printTable(results)
	if o.jsonPath != "" {
		b, err := json.MarshalIndent(results, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(o.jsonPath, append(b, '\n'), 0o644)
	}
	return nil
}

// startGroup starts n members of a group on the broker at brokerURL, on a
// new PostgreSQL database, and returns them as one target.
func startGroup(ctx context.Context, n int, brokerURL string, brokerPID, rows, self int) (*target, func(), error) {
	dsn, err := testdb.LaunchPostgres(fmt.Sprintf("mqttspec_bench_%d_group_%d", self, n))
	if err != nil {
		return nil, nil, err
	}
	name := fmt.Sprintf("group-%d", n)
	t := &target{name: name, prefix: "spec", procs: map[string]int{"broker": brokerPID, "load": self}, library: true}
	t.addr = strings.TrimPrefix(brokerURL, "tcp://")
	srvs := make([]*server, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srvs[i], errs[i] = startServer(ctx, fmt.Sprintf("%s-member-%d", name, i+1), "external", "-broker", brokerURL,
				"-dsn", dsn, "-group", name, "-member", fmt.Sprintf("%s-member-%d", name, i+1), "-members", fmt.Sprint(n), "-rows", fmt.Sprint(rows))
		}()
	}
	wg.Wait()
	stop := func() {
		for _, s := range srvs {
			if s != nil {
				s.stop()
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		stop()
		return nil, nil, err
	}
	for i, s := range srvs {
		t.procs[fmt.Sprintf("server%d", i+1)] = s.pid()
	}
	if pid := testdb.PostgresPID(); pid > 0 {
		t.procs["db"] = pid
	}
	t.srv = srvs[0]
	return t, stop, nil
}

// measurePair runs sc against the ceiling and the library o.runs times
// each, alternating, and returns the median run of each.
func measurePair(ctx context.Context, o options, sc scenario, qos byte, ceiling, lib *target) (result, result, error) {
	var cs, ls []result
	for i := 0; i < o.runs; i++ {
		for _, t := range []*target{ceiling, lib} {
			r, err := measure(ctx, o, sc, qos, t)
			if err != nil {
				return result{}, result{}, fmt.Errorf("%s: %w", t.name, err)
			}
			if t == ceiling {
				cs = append(cs, r)
			} else {
				ls = append(ls, r)
			}
			report(r)
		}
	}
	c, l := median(cs), median(ls)
	l.Ceiling = c.Target
	if sc.Fanout > 0 {
		l.Ratio = l.Notes / c.Notes
	} else {
		l.Ratio = l.Rate / c.Rate
	}
	return c, l, nil
}

// measure runs sc once against t, on the stored rows only (what earlier
// loads created is deleted first).
func measure(ctx context.Context, o options, sc scenario, qos byte, t *target) (result, error) {
	if t.library {
		if _, err := t.srv.command("reset", "RESET"); err != nil {
			return result{}, err
		}
	}
	before := map[string]time.Duration{}
	after := map[string]time.Duration{}
	marks := 0
	mark := func() {
		into := before
		if marks > 0 {
			into = after
		}
		marks++
		for name, pid := range t.procs {
			if name == "db" {
				into[name], _ = treeTime(pid)
			} else {
				into[name], _ = cpuTime(pid)
			}
		}
	}
	var subscribe func([]*conn) error
	if t.library {
		subscribe = subscribeFanout
	}
	st, elapsed, err := load(ctx, t.addr, t.prefix, sc, qos, o.rows, o.warmup, o.duration, subscribe, mark)
	if err != nil {
		return result{}, err
	}
	r := result{Scenario: sc.Name, QoS: qos, Target: t.name, Failures: st.failures, CPU: map[string]float64{}}
	r.Rate = float64(st.answers) / elapsed.Seconds()
	r.Notes = float64(st.notes) / elapsed.Seconds()
	r.P50 = ms(percentile(st.latencies, 50))
	r.P99 = ms(percentile(st.latencies, 99))
	r.Max = ms(percentile(st.latencies, 100))
	for name := range t.procs {
		if st.answers > 0 {
			r.CPU[name] = float64((after[name] - before[name]).Microseconds()) / float64(st.answers)
			if strings.HasPrefix(name, "server") && name != "server" { // members of a group: all of them
				r.CPU["server"] += r.CPU[name]
			}
		}
	}
	return r, nil
}

// bareInsert measures GORM inserting on the library's own database from
// as many goroutines as sc keeps requests in flight.
func bareInsert(o options, sc scenario, qos byte, lib *target) (result, error) {
	pid := lib.srv.pid()
	cpu0, _ := cpuTime(pid)
	line, err := lib.srv.command(fmt.Sprintf("insert %d %g", sc.Clients*sc.InFlight, o.duration.Seconds()), "INSERTED ")
	if err != nil {
		return result{}, err
	}
	cpu1, _ := cpuTime(pid)
	var n int64
	var secs float64
	if _, err := fmt.Sscanf(line, "%d %g", &n, &secs); err != nil || secs <= 0 {
		return result{}, fmt.Errorf("bare insert: bad answer %q", line)
	}
	r := result{Scenario: sc.Name, QoS: qos, Target: "gorm-insert", Rate: float64(n) / secs, CPU: map[string]float64{}}
	if n > 0 {
		r.CPU["server"] = float64((cpu1 - cpu0).Microseconds()) / float64(n)
	}
	return r, nil
}

// subscribeFanout subscribes each fan-out client to users: the even ones
// to active users (what the writers create), the odd ones to inactive.
func subscribeFanout(subs []*conn) error {
	for i, c := range subs {
		status := "active"
		if i%2 == 1 {
			status = "inactive"
		}
		req := fmt.Appendf(nil, `{"id":"1","type":"subscription","operation":"subscribe","schema":"public","entity":"users","options":{"filters":[{"column":"status","operator":"eq","value":"%s"}]}}`, status)
		if err := c.publish(c.topic("request"), 1, req); err != nil {
			return err
		}
		if err := c.flush(); err != nil {
			return err
		}
		for {
			pk, err := c.read()
			if err != nil {
				return err
			}
			if pk.TopicName == c.topic("response") {
				if !strings.Contains(string(pk.Payload), `"success":true`) {
					return fmt.Errorf("subscribe %s: %s", c.id, pk.Payload)
				}
				if err := c.ack(pk); err != nil {
					return err
				}
				break
			}
		}
	}
	return nil
}

// median returns the run with the median rate (of notifications for
// fan-out).
func median(rs []result) result {
	if len(rs) == 0 {
		return result{}
	}
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b result) int {
		x, y := a.Rate+a.Notes, b.Rate+b.Notes
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	})
	return rs[len(rs)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// report prints a run as it ends.
func report(r result) {
	fmt.Printf("%-10s q%d %-11s %9.0f req/s %9.0f notes/s p50 %6.2f ms p99 %6.2f ms\n", r.Scenario, r.QoS, r.Target, r.Rate, r.Notes, r.P50, r.P99)
}

func ratio(r result) string {
	if r.Ratio == 0 {
		return "      "
	}
	return fmt.Sprintf("%5.0f%%", 100*r.Ratio)
}

// printTable prints the results of the loads as a table, then those of
// the idle connections as another.
func printTable(rs []result) {
	loads, idle := []result{}, []result{}
	for _, r := range rs {
		if r.Scenario == "idle" {
			idle = append(idle, r)
		} else {
			loads = append(loads, r)
		}
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	if len(loads) > 0 {
		fmt.Fprintln(w, "scenario\tqos\ttarget\treq/s\tnotes/s\tof ceiling\tp50 ms\tp99 ms\tmax ms\tfailed\tserver µs/req\tbroker µs/req\tdb µs/req\tload µs/req\t")
	}
	for _, r := range loads {
		notes := ""
		if r.Notes > 0 {
			notes = fmt.Sprintf("%.0f", r.Notes)
		}
		cpu := func(name string) string {
			if v, ok := r.CPU[name]; ok {
				return fmt.Sprintf("%.0f", v)
			}
			return ""
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%.0f\t%s\t%s\t%.2f\t%.2f\t%.2f\t%d\t%s\t%s\t%s\t%s\t\n",
			r.Scenario, r.QoS, r.Target, r.Rate, notes, strings.TrimSpace(ratio(r)), r.P50, r.P99, r.Max, r.Failures,
			cpu("server"), cpu("broker"), cpu("db"), cpu("load"))
	}
	_ = w.Flush()
	if len(idle) == 0 {
		return
	}
	fmt.Println()
	w = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "idle\ttarget\tconnections\theap B/conn\tstacks B/conn\tresident B/conn\tgoroutines/conn\t")
	for _, r := range idle {
		fmt.Fprintf(w, "idle\t%s\t%d\t%.0f\t%.0f\t%.0f\t%.1f\t\n", r.Target, r.IdleConns, r.HeapPerConn, r.StacksPerConn, r.RSSPerConn, r.GoroutinesPerConn)
	}
	_ = w.Flush()
}
