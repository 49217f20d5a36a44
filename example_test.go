package mqttspec_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/libtnb/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/mqttspec/mqttspec"
)

// Start a handler with the embedded broker, then create and read a record
// as an MQTT client.
func ExampleNewHandlerWithGORM() {
	type Product struct {
		ID    uint   `json:"id" gorm:"primaryKey"`
		Name  string `json:"name"`
		Price int    `json:"price"`
	}
	dir, _ := os.MkdirTemp("", "mqttspec-example")
	defer os.RemoveAll(dir)
	db, _ := gorm.Open(sqlite.Open(filepath.Join(dir, "shop.db")), &gorm.Config{Logger: logger.Discard})
	_ = db.AutoMigrate(&Product{})

	handler, err := mqttspec.NewHandlerWithGORM(db,
		mqttspec.WithEmbeddedBroker(mqttspec.BrokerConfig{Host: "127.0.0.1", Port: -1}))
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = handler.Registry().RegisterModel("public.products", &Product{})
	if err := handler.Start(); err != nil {
		fmt.Println(err)
		return
	}
	defer handler.Shutdown()

	// A device with client id "shop-1".
	answers := make(chan []byte, 2)
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + handler.Addr()).SetClientID("shop-1")
	client := mqtt.NewClient(opts)
	client.Connect().Wait()
	defer client.Disconnect(10)
	client.Subscribe("spec/shop-1/response", 1, func(_ mqtt.Client, m mqtt.Message) { answers <- m.Payload() }).Wait()

	ask := func(request string) {
		client.Publish("spec/shop-1/request", 1, false, request).Wait()
		var resp struct {
			ID      string          `json:"id"`
			Success bool            `json:"success"`
			Data    json.RawMessage `json:"data"`
		}
		select {
		case raw := <-answers:
			_ = json.Unmarshal(raw, &resp)
			fmt.Println(resp.ID, resp.Success, string(resp.Data))
		case <-time.After(5 * time.Second):
			fmt.Println("no answer")
		}
	}
	ask(`{"id":"c1","type":"request","operation":"create","schema":"public","entity":"products","data":{"name":"lamp","price":25}}`)
	ask(`{"id":"r1","type":"request","operation":"read","schema":"public","entity":"products","options":{"filters":[{"column":"price","operator":"lt","value":30}]}}`)
	// Output:
	// c1 true {"id":1,"name":"lamp","price":25}
	// r1 true [{"id":1,"name":"lamp","price":25}]
}

// Run one member of a group of instances that serve spec/+/request
// together through an external broker, sharing one PostgreSQL database:
// each client id is served by one member, and every member notifies its
// clients' subscriptions of changes made anywhere (see the README,
// "Running several instances"). Compiled, not run: it needs a broker and
// PostgreSQL (TestGroup runs groups on both).
func ExampleExternalBrokerConfig_group() {
	var db *gorm.DB // your PostgreSQL database, opened with gorm.io/driver/postgres
	handler, err := mqttspec.NewHandlerWithGORM(db, mqttspec.WithExternalBroker(mqttspec.ExternalBrokerConfig{
		BrokerURL: "tcp://127.0.0.1:1883",
		ClientID:  "api-1", // unique per member
		Group:     "api",   // the same for every member
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := handler.Start(); err != nil { // fails unless the database is PostgreSQL
		fmt.Println(err)
		return
	}
	defer handler.Shutdown()
	fmt.Println("members:", handler.GroupMembers())
}

// Notify subscriptions of every committed change of the registered tables,
// whoever makes it (psql, another service), from PostgreSQL triggers.
func ExampleWithChangeFeed() {
	_ = mqttspec.WithChangeFeed(mqttspec.ChangeFeedConfig{
		PollInterval: 100 * time.Millisecond, // how soon writes made outside mqttspec are seen
	})
}
