// Command multitenant serves one table to several tenants over MQTT. Each
// client connects with a signed token as its MQTT username and a client id
// made of the token's tenant and user ("acme.alice", or "acme.alice.phone"
// for one of several devices); hooks bind every read, update, delete and
// subscription to the token's tenant, set the tenant on creates, and let
// only admins delete.
//
//	go run ./examples/multitenant -secret s3cret
//	go run ./examples/multitenant -secret s3cret -token acme:alice:admin   # print a token
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/libtnb/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/mqttspec/mqttspec"
)

// Order belongs to one tenant.
type Order struct {
	ID       uint    `json:"id" gorm:"primaryKey"`
	TenantID string  `json:"tenant_id" gorm:"index"`
	Item     string  `json:"item"`
	Amount   float64 `json:"amount"`
	Status   string  `json:"status" gorm:"default:'open'"`
}

func main() {
	host := flag.String("host", "localhost", "MQTT listen address")
	port := flag.Int("port", 1883, "MQTT port")
	dbPath := flag.String("db", "multitenant.db", "SQLite file")
	secret := flag.String("secret", "", "HMAC secret for tokens (required)")
	token := flag.String("token", "", "print a token for tenant:user[:role,role] and exit")
	flag.Parse()
	if *secret == "" {
		fmt.Fprintln(os.Stderr, "-secret is required")
		os.Exit(2)
	}
	if *token != "" {
		parts := strings.SplitN(*token, ":", 3)
		if len(parts) < 2 {
			fmt.Fprintln(os.Stderr, "-token wants tenant:user[:roles]")
			os.Exit(2)
		}
		c := Claims{TenantID: parts[0], UserID: parts[1], Expires: time.Now().Add(24 * time.Hour).Unix()}
		if len(parts) == 3 {
			c.Roles = strings.Split(parts[2], ",")
		}
		fmt.Println(SignToken([]byte(*secret), c))
		return
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	h, err := newServer(*dbPath, []byte(*secret), mqttspec.BrokerConfig{Host: *host, Port: *port}, log)
	if err != nil {
		log.Error("start failed", "error", err)
		os.Exit(1)
	}
	log.Info("multitenant listening", "mqtt", "tcp://"+h.Addr())
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	if err := h.Shutdown(); err != nil {
		log.Error("shutdown", "error", err)
	}
}

// newServer opens the database, registers Order and the tenancy hooks, and
// starts the handler.
func newServer(dbPath string, secret []byte, broker mqttspec.BrokerConfig, log *slog.Logger) (*mqttspec.Handler, error) {
	dsn := "file:" + dbPath + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_txlock=immediate"
	db, err := gorm.Open(sqlite.Open(dsn), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dbPath, err)
	}
	if err := db.AutoMigrate(&Order{}); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	h, err := mqttspec.NewHandlerWithGORM(db, mqttspec.WithEmbeddedBroker(broker), mqttspec.WithLogger(log))
	if err != nil {
		return nil, err
	}
	if err := h.Registry().RegisterModel("shop.orders", &Order{}); err != nil {
		return nil, err
	}
	InstallTenancy(h, secret)
	if err := h.Start(); err != nil {
		return nil, err
	}
	return h, nil
}
