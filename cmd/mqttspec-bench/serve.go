package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/libtnb/sqlite"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/mqttspec/mqttspec"
)

// User is the README's quick-start model, as the quick start declares it.
type User struct {
	ID     uint   `json:"id" gorm:"primaryKey"`
	Name   string `json:"name"`
	Email  string `json:"email"`
	Status string `json:"status" gorm:"index"`
}

// The server processes. The parent starts "mqttspec-bench serve KIND" and
// reads "READY host:port" from its output; each line on its input is a
// command ("insert WORKERS SECONDS" answers "INSERTED N SECONDS"; "reset"
// deletes what the loads created and answers "RESET"), and the end of its
// input stops it.
//
//	echo       bare Mochi answering every request from an inline handler
//	embedded   the library with its embedded broker, GORM on SQLite
//	paho-echo  a paho client answering every request through -broker
//	external   the library on the external broker -broker
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	broker := fs.String("broker", "", "external broker URL (paho-echo, external)")
	rows := fs.Int("rows", 10000, "users stored before the load (embedded, external)")
	prefix := fs.String("prefix", "spec", "first topic level the echo answers under")
	fanout := fs.Int("fanout", 100, "subscribers the echo notifies on a create (even ones, like a filter matching half)")
	dir := fs.String("dir", "", "directory for the database (default: a new temporary one)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run here")
	dsn := fs.String("dsn", "", "PostgreSQL URL instead of an SQLite file (external)")
	group := fs.String("group", "", "group to join (external, with -dsn)")
	member := fs.String("member", "", "client id of this member of -group")
	members := fs.Int("members", 1, "members of -group to wait for before READY")
	if len(args) == 0 {
		return errors.New("serve: which server? echo, embedded, paho-echo or external")
	}
	kind := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
	}
	var (
		addr string
		db   *gorm.DB
		stop func() error
		err  error
	)
	switch kind {
	case "echo":
		addr, stop, err = serveEcho(*prefix, *fanout)
	case "paho-echo":
		addr, stop, err = servePahoEcho(*broker, *prefix, *fanout)
	case "embedded", "external":
		if *dir == "" {
			if *dir, err = os.MkdirTemp("", "mqttspec-bench-"); err != nil {
				return err
			}
			defer os.RemoveAll(*dir)
		}
		if *dsn != "" {
			db, err = openPostgres(*dsn, *rows)
		} else {
			db, err = openDatabase(filepath.Join(*dir, "bench.db"), *rows)
		}
		if err != nil {
			return err
		}
		addr, stop, err = serveLibrary(db, kind, *broker, groupMember{*group, *member, *members})
	default:
		return fmt.Errorf("serve: unknown server %q", kind)
	}
	if err != nil {
		return err
	}
	fmt.Println("READY " + addr)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var workers int
		var seconds float64
		if _, err := fmt.Sscanf(in.Text(), "insert %d %g", &workers, &seconds); err == nil && db != nil {
			n, took := bareInserts(db, workers, time.Duration(seconds*float64(time.Second)))
			fmt.Printf("INSERTED %d %g\n", n, took.Seconds())
			continue
		}
		if in.Text() == "mem" {
			fmt.Println(memReport())
			continue
		}
		if in.Text() == "reset" && db != nil {
			err := db.Where("id > ?", *rows).Delete(&User{}).Error
			fmt.Println("RESET", err)
			continue
		}
		fmt.Println("ERROR unknown command: " + in.Text())
	}
	return stop()
}

// openDatabase opens the SQLite file as the README's quick start does and
// stores rows users, half of them active.
func openDatabase(path string, rows int) (*gorm.DB, error) {
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := gorm.Open(sqlite.Open(dsn), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return nil, err
	}
	if err := db.AutoMigrate(&User{}); err != nil {
		return nil, err
	}
	return db, seedUsers(db, rows)
}

// seedUsers stores rows users, half of them active.
func seedUsers(db *gorm.DB, rows int) error {
	batch := make([]User, 0, 500)
	for i := 1; i <= rows; i++ {
		status := "active"
		if i%2 == 0 {
			status = "inactive"
		}
		batch = append(batch, User{Name: fmt.Sprint("user-", i), Email: fmt.Sprintf("user-%d@example.com", i), Status: status})
		if len(batch) == cap(batch) || i == rows {
			if err := db.Create(&batch).Error; err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return nil
}

// openPostgres opens the PostgreSQL database of dsn and, if it holds no
// users yet, stores rows of them (under a lock: the members of a group
// start together).
func openPostgres(dsn string, rows int) (*gorm.DB, error) {
	db, err := gorm.Open(postgres.Open(dsn), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return nil, err
	}
	err = db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec("SELECT pg_advisory_xact_lock(72616805)").Error; err != nil {
			return err
		}
		if err := tx.AutoMigrate(&User{}); err != nil {
			return err
		}
		var n int64
		if err := tx.Model(&User{}).Count(&n).Error; err != nil || n > 0 {
			return err
		}
		return seedUsers(tx, rows)
	})
	return db, err
}

// groupMember is the group a library server joins ("" for none).
type groupMember struct {
	name, id string
	members  int
}

// serveLibrary starts the library as a user of the README would.
func serveLibrary(db *gorm.DB, kind, brokerURL string, g groupMember) (string, func() error, error) {
	opt := mqttspec.WithEmbeddedBroker(mqttspec.BrokerConfig{Host: "127.0.0.1", Port: -1})
	if kind == "external" {
		id := fmt.Sprint("mqttspec-bench-", os.Getpid())
		if g.id != "" {
			id = g.id
		}
		opt = mqttspec.WithExternalBroker(mqttspec.ExternalBrokerConfig{BrokerURL: brokerURL, ClientID: id, Group: g.name})
	}
	h, err := mqttspec.NewHandlerWithGORM(db, opt, mqttspec.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		return "", nil, err
	}
	if err := h.Registry().RegisterModel("public.users", &User{}); err != nil {
		return "", nil, err
	}
	if err := h.Start(); err != nil {
		return "", nil, err
	}
	if g.name != "" { // serving once the whole group is there and settled
		deadline := time.Now().Add(time.Minute)
		for len(h.GroupMembers()) < g.members {
			if time.Now().After(deadline) {
				return "", nil, fmt.Errorf("group %s: %d of %d members after a minute", g.name, len(h.GroupMembers()), g.members)
			}
			time.Sleep(20 * time.Millisecond) // the handler gives no signal for this
		}
		time.Sleep(2 * mqttspec.DefaultGroupSettle)
	}
	addr := h.Addr()
	if kind == "external" {
		addr = strings.TrimPrefix(brokerURL, "tcp://")
	}
	return addr, h.Shutdown, nil
}

// bareInserts inserts users with GORM from workers goroutines for d: the
// ceiling of creates on this database.
func bareInserts(db *gorm.DB, workers int, d time.Duration) (int64, time.Duration) {
	var n atomic.Int64
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				u := User{Name: fmt.Sprintf("bare-%d-%d", w, i), Email: "bare@example.com", Status: "active"}
				if db.Create(&u).Error == nil {
					n.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return n.Load(), time.Since(start)
}

// echoRequest is what an echo reads of a request.
type echoRequest struct {
	ID        string `json:"id"`
	Operation string `json:"operation"`
	RecordID  string `json:"record_id"`
}

// echoAnswer is an answer shaped like the library's.
type echoAnswer struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	Success   bool      `json:"success"`
	Data      any       `json:"data"`
	Timestamp time.Time `json:"timestamp"`
}

// echoUser stands for a stored record in the echo's answers.
var echoUser = User{ID: 42, Name: "user-42", Email: "user-42@example.com", Status: "active"}

// echo answers one request as the library would in shape, without a
// database: it is the ceiling the broker and JSON leave. A create also
// notifies the even ones of fanout subscribers.
func echo(payload []byte, prefix string, fanout int, publish func(topic string, payload []byte)) (answer []byte, ok bool) {
	var req echoRequest
	if err := json.Unmarshal(payload, &req); err != nil {
		return nil, false
	}
	var data any = echoUser
	if req.Operation == "read" && req.RecordID == "" {
		data = []User{echoUser, echoUser, echoUser, echoUser, echoUser, echoUser, echoUser, echoUser, echoUser, echoUser}
	}
	if req.Operation == "create" {
		note, _ := json.Marshal(map[string]any{"type": "notification", "operation": "create", "subscription_id": "s",
			"schema": "public", "entity": "users", "data": echoUser, "matches": true, "timestamp": time.Now()})
		for i := 0; i < fanout; i += 2 {
			publish(prefix+"/fan-"+strconv.Itoa(i)+"/notify/s", note)
		}
	}
	answer, err := json.Marshal(echoAnswer{ID: req.ID, Type: "response", Success: true, Data: data, Timestamp: time.Now()})
	return answer, err == nil
}

// clientOf returns the client id of a request topic {prefix}/{id}/request.
func clientOf(prefix, topic string) (string, bool) {
	rest, ok := strings.CutPrefix(topic, prefix+"/")
	if !ok {
		return "", false
	}
	id, ok := strings.CutSuffix(rest, "/request")
	return id, ok && id != "" && !strings.Contains(id, "/")
}

// allowAll lets every client connect and use every topic, as a bare broker
// for the echo.
type allowAll struct{ mqtt.HookBase }

func (h *allowAll) ID() string { return "allow-all" }

func (h *allowAll) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (h *allowAll) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

func (h *allowAll) OnACLCheck(*mqtt.Client, string, bool) bool { return true }

// serveEcho starts bare Mochi with an inline handler that echoes.
func serveEcho(prefix string, fanout int) (string, func() error, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := l.Addr().String()
	_ = l.Close()
	server := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
	if err := server.AddHook(new(allowAll), nil); err != nil {
		return "", nil, err
	}
	if err := server.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})); err != nil {
		return "", nil, err
	}
	err = server.Subscribe(prefix+"/+/request", 1, func(cl *mqtt.Client, sub packets.Subscription, pk packets.Packet) {
		id, ok := clientOf(prefix, pk.TopicName)
		if !ok {
			return
		}
		publish := func(topic string, payload []byte) { _ = server.Publish(topic, payload, false, pk.FixedHeader.Qos) }
		if answer, ok := echo(pk.Payload, prefix, fanout, publish); ok {
			publish(prefix+"/"+id+"/response", answer)
		}
	})
	if err != nil {
		return "", nil, err
	}
	if err := server.Serve(); err != nil {
		return "", nil, err
	}
	return addr, server.Close, nil
}

// servePahoEcho connects a paho client to brokerURL that echoes requests.
func servePahoEcho(brokerURL, prefix string, fanout int) (string, func() error, error) {
	if brokerURL == "" {
		return "", nil, errors.New("paho-echo needs -broker")
	}
	o := paho.NewClientOptions().AddBroker(brokerURL).SetClientID(fmt.Sprint("paho-echo-", os.Getpid())).
		SetProtocolVersion(4).SetAutoReconnect(false).SetOrderMatters(false)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return "", nil, fmt.Errorf("paho-echo: connect %s: %v", brokerURL, tok.Error())
	}
	tok := c.Subscribe(prefix+"/+/request", 1, func(_ paho.Client, m paho.Message) {
		id, ok := clientOf(prefix, m.Topic())
		if !ok {
			return
		}
		publish := func(topic string, payload []byte) { c.Publish(topic, m.Qos(), false, payload) }
		if answer, ok := echo(m.Payload(), prefix, fanout, publish); ok {
			publish(prefix+"/"+id+"/response", answer)
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return "", nil, fmt.Errorf("paho-echo: subscribe: %v", tok.Error())
	}
	stop := func() error {
		c.Disconnect(100)
		return nil
	}
	return strings.TrimPrefix(brokerURL, "tcp://"), stop, nil
}

// waitReady reads a server's output until its READY line and returns the
// address on it.
func waitReady(ctx context.Context, sc *bufio.Scanner) (string, error) {
	lines := make(chan string, 1)
	go func() {
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				lines <- addr
				return
			}
		}
		close(lines)
	}()
	select {
	case addr, ok := <-lines:
		if !ok {
			return "", errors.New("the server process ended before it was ready")
		}
		return addr, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}
