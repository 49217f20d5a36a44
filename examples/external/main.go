// Command external serves the README's User model as public.users through
// an external MQTT broker (here mosquitto), with GORM and an SQLite file.
//
//	go run ./examples/external -broker tcp://127.0.0.1:1883
//	MQTTSPEC_BROKER_PASSWORD=... go run ./examples/external -username mqttspec
//	go run ./examples/external -db postgres://user:pass@127.0.0.1:5432/app
//
// Several instances serve one prefix together as a group: each with its
// own -client-id, the same -group and the same PostgreSQL database (see the
// README, "Running several instances"):
//
//	go run ./examples/external -group api -client-id api-1 -db postgres://...
//	go run ./examples/external -group api -client-id api-2 -db postgres://...
//
// For a local try, start mosquitto 2 with this configuration
// (mosquitto -c dev.conf):
//
//	listener 1883 127.0.0.1
//	allow_anonymous true
//	set_tcp_nodelay true
//	max_queued_messages 0
//	max_inflight_messages 0
//
// set_tcp_nodelay avoids a ~44 ms delay on every QoS 1 round trip, and the
// two limits stop mosquitto from dropping requests to the handler's single
// connection under load. This configuration lets any client read and write
// any topic; for anything shared use the password file and ACL of the
// README, section "External broker" (testdata/mosquitto/).
//
// Then, from another shell (mosquitto-clients):
//
//	mosquitto_rr -i demo -q 1 -t spec/demo/request -e spec/demo/response \
//	  -m '{"id":"1","type":"request","operation":"create","schema":"public","entity":"users","data":{"name":"Ada","email":"ada@example.com","status":"active"}}'
//
// Ctrl-C stops the handler.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/libtnb/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/mqttspec/mqttspec"
)

// User is the README's example model.
type User struct {
	ID     uint   `json:"id" gorm:"primaryKey"`
	Name   string `json:"name"`
	Email  string `json:"email"`
	Status string `json:"status"`
}

func main() {
	broker := flag.String("broker", "tcp://127.0.0.1:1883", "URL of the MQTT broker")
	clientID := flag.String("client-id", "mqttspec-example", "MQTT client id of this handler (unique per instance)")
	username := flag.String("username", "", "username at the broker (password from $MQTTSPEC_BROKER_PASSWORD)")
	dbPath := flag.String("db", "external.db", "SQLite database file, or a postgres:// URL")
	group := flag.String("group", "", "group of instances sharing the work (needs a postgres:// -db)")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg := mqttspec.ExternalBrokerConfig{
		BrokerURL: *broker,
		ClientID:  *clientID,
		Username:  *username,
		Password:  os.Getenv("MQTTSPEC_BROKER_PASSWORD"),
		Group:     *group,
	}
	if err := run(log, cfg, *dbPath); err != nil {
		log.Error("external example failed", "error", err)
		os.Exit(1)
	}
}

// openDB opens a postgres:// (or postgresql://) URL with PostgreSQL, and
// anything else as an SQLite file.
func openDB(target string) (*gorm.DB, error) {
	dialector := sqlite.Open(
		// WAL, a busy timeout and immediate write transactions let
		// concurrent clients write to SQLite without "database is locked".
		"file:" + target + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate")
	if strings.HasPrefix(target, "postgres://") || strings.HasPrefix(target, "postgresql://") {
		dialector = postgres.Open(target)
	}
	db, err := gorm.Open(dialector, &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", target, err)
	}
	return db, nil
}

func run(log *slog.Logger, cfg mqttspec.ExternalBrokerConfig, dbPath string) error {
	handler, err := start(log, cfg, dbPath)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	log.Info("shutting down")
	return handler.Shutdown()
}

// start opens the database and starts a handler on the broker of cfg.
func start(log *slog.Logger, cfg mqttspec.ExternalBrokerConfig, dbPath string) (*mqttspec.Handler, error) {
	db, err := openDB(dbPath)
	if err != nil {
		return nil, err
	}
	if err := migrate(db); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	handler, err := mqttspec.NewHandlerWithGORM(db,
		mqttspec.WithExternalBroker(cfg),
		mqttspec.WithLogger(log),
	)
	if err != nil {
		return nil, err
	}
	if err := handler.Registry().RegisterModel("public.users", &User{}); err != nil {
		return nil, err
	}
	// In external mode the handler learns a client from its first request:
	// BeforeConnect runs then, knowing only the client id of the topic.
	handler.Hooks().Register(mqttspec.BeforeConnect, func(ctx *mqttspec.HookContext) error {
		log.Info("first request from client", "client", ctx.Client.ID)
		return nil
	})
	if err := handler.Start(); err != nil { // returns once connected, subscribed and checked
		return nil, err
	}
	log.Info("serving public.users", "broker", cfg.BrokerURL, "client_id", cfg.ClientID, "db", redact(dbPath),
		"request_topic", "spec/{client_id}/request", "group", cfg.Group, "members", handler.GroupMembers())
	return handler, nil
}

// migrate creates the table. On PostgreSQL it does so under a transaction
// lock, so that instances of a group starting at once do not race to
// create the same table.
func migrate(db *gorm.DB) error {
	if db.Dialector.Name() != "postgres" {
		return db.AutoMigrate(&User{})
	}
	return db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec("SELECT pg_advisory_xact_lock(72616804)").Error; err != nil {
			return err
		}
		return tx.AutoMigrate(&User{})
	})
}

// redact hides the password of a database URL in logs.
func redact(target string) string {
	if u, err := url.Parse(target); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
	}
	return target
}
