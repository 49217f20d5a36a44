// Command quickstart serves the README's User model as public.users over
// MQTT, with the embedded broker and an SQLite file.
//
//	go run ./examples/quickstart                 # localhost:1883, ./quickstart.db
//	go run ./examples/quickstart -port 1884 -db /tmp/users.db
//
// Then, with mosquitto's clients:
//
//	mosquitto_sub -i reader -t 'spec/reader/response' &
//	mosquitto_pub -i reader -t spec/reader/request -q 1 \
//	  -m '{"id":"1","type":"request","operation":"create","schema":"public","entity":"users","data":{"name":"Ada","email":"ada@example.com","status":"active"}}'
//
// (mosquitto_pub and mosquitto_sub need different client ids in practice:
// see the README, "Try it".)
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/libtnb/sqlite"
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
	host := flag.String("host", "localhost", "address the MQTT listener binds to")
	port := flag.Int("port", 1883, "MQTT TCP port")
	dbPath := flag.String("db", "quickstart.db", "SQLite database file")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log, *host, *port, *dbPath); err != nil {
		log.Error("quickstart failed", "error", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, host string, port int, dbPath string) error {
	// WAL, a busy timeout and immediate write transactions let concurrent
	// clients write to SQLite without "database is locked" errors.
	dsn := "file:" + dbPath + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := gorm.Open(sqlite.Open(dsn), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return fmt.Errorf("open %s: %w", dbPath, err)
	}
	if err := db.AutoMigrate(&User{}); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}

	handler, err := mqttspec.NewHandlerWithGORM(db,
		mqttspec.WithEmbeddedBroker(mqttspec.BrokerConfig{Host: host, Port: port}),
		mqttspec.WithLogger(log),
	)
	if err != nil {
		return err
	}
	if err := handler.Registry().RegisterModel("public.users", &User{}); err != nil {
		return err
	}
	if err := handler.Start(); err != nil {
		return err
	}
	log.Info("quickstart listening", "mqtt", "tcp://"+handler.Addr(), "db", dbPath,
		"request_topic", "spec/{client_id}/request")

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	log.Info("shutting down")
	return handler.Shutdown()
}
