package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/libtnb/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/client"
)

// exampleServer starts a handler serving public.users with the embedded
// broker on a free port and returns its URL and a function that stops it.
func exampleServer() (string, func()) {
	dir, _ := os.MkdirTemp("", "mqttspec-client-example")
	db, _ := gorm.Open(sqlite.Open(filepath.Join(dir, "users.db")), &gorm.Config{Logger: logger.Discard})
	_ = db.AutoMigrate(&User{})
	h, err := mqttspec.NewHandlerWithGORM(db, mqttspec.WithEmbeddedBroker(mqttspec.BrokerConfig{Host: "127.0.0.1", Port: -1}))
	if err != nil {
		panic(err)
	}
	_ = h.Registry().RegisterModel("public.users", &User{})
	if err := h.Start(); err != nil {
		panic(err)
	}
	return "tcp://" + h.Addr(), func() { _ = h.Shutdown(); _ = os.RemoveAll(dir) }
}

// Create, read, update and delete a record; a failed request returns a
// *mqttspec.Error with the protocol's code.
func ExampleDial() {
	url, stop := exampleServer()
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.WithClientID("device-1"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	var ada User
	_ = c.Create(ctx, "public", "users", map[string]any{"name": "Ada", "status": "active"}, &ada)
	fmt.Println("created", ada.ID, ada.Name)

	var users []User
	page, _ := c.Read(ctx, "public", "users", &mqttspec.RequestOptions{
		Filters: []mqttspec.FilterOption{{Column: "status", Operator: "eq", Value: "active"}},
	}, &users)
	fmt.Println("active:", len(users), "of", page.Total)

	_ = c.Update(ctx, "public", "users", ada.ID, map[string]any{"status": "away"}, &ada)
	fmt.Println("status", ada.Status)

	_ = c.Delete(ctx, "public", "users", ada.ID, nil)
	err = c.ReadOne(ctx, "public", "users", ada.ID, &ada)
	var e *mqttspec.Error
	if errors.As(err, &e) {
		fmt.Println("read after delete:", e.Code)
	}
	// Output:
	// created 1 Ada
	// active: 1 of 1
	// status away
	// read after delete: not_found
}

// A live view: the records matching the filters now, then every change,
// in commit order.
func ExampleClient_Subscribe() {
	url, stop := exampleServer()
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reader, _ := client.Dial(ctx, url, client.WithClientID("dashboard"))
	defer reader.Close()
	writer, _ := client.Dial(ctx, url, client.WithClientID("writer"))
	defer writer.Close()

	_ = writer.Create(ctx, "public", "users", map[string]any{"name": "Ada", "status": "active"}, nil)
	view, err := reader.Subscribe(ctx, "public", "users",
		[]mqttspec.FilterOption{{Column: "status", Operator: "eq", Value: "active"}}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer view.Close(ctx)
	fmt.Println("snapshot:", len(view.Records()), "record")

	_ = writer.Create(ctx, "public", "users", map[string]any{"name": "Grace", "status": "active"}, nil)
	_ = writer.Update(ctx, "public", "users", 1, map[string]any{"status": "inactive"}, nil)
	for i := 0; i < 2; i++ {
		select {
		case ch := <-view.Changes():
			var u User
			_ = ch.Decode(&u)
			fmt.Println(ch.Seq, ch.Operation, u.Name, "matches:", ch.Matches)
		case <-ctx.Done():
			fmt.Println("no change")
			return
		}
	}
	// Output:
	// snapshot: 1 record
	// 1 create Grace matches: true
	// 2 update Ada matches: false
}
