// Command goclient uses the Go client package against the quickstart: a
// create, a filtered read, an update, a live view that sees a change, a
// delete and the error of reading it again.
//
//	go run ./examples/clients/goclient   # MQTT_URL, default tcp://localhost:1883
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/mqttspec/mqttspec"
	"github.com/mqttspec/mqttspec/client"
)

// User is the quickstart's public.users.
type User struct {
	ID     uint   `json:"id"`
	Name   string `json:"name"`
	Email  string `json:"email"`
	Status string `json:"status"`
}

func main() {
	url := os.Getenv("MQTT_URL")
	if url == "" {
		url = "tcp://localhost:1883"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, url); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, url string) error {
	c, err := client.Dial(ctx, url, client.WithClientID("device-7"))
	if err != nil {
		return err
	}
	defer c.Close()
	active := []mqttspec.FilterOption{{Column: "status", Operator: "eq", Value: "active"}}

	var ada User
	if err := c.Create(ctx, "public", "users", map[string]any{"name": "Ada", "status": "active"}, &ada); err != nil {
		return err
	}
	var users []User
	page, err := c.Read(ctx, "public", "users", &mqttspec.RequestOptions{Filters: active}, &users)
	if err != nil {
		return err
	}
	fmt.Println("active users:", page.Total)

	view, err := c.Subscribe(ctx, "public", "users", active, nil)
	if err != nil {
		return err
	}
	defer view.Close(ctx)
	if err := c.Update(ctx, "public", "users", ada.ID, map[string]any{"status": "away"}, &ada); err != nil {
		return err
	}
	select {
	case ch := <-view.Changes():
		var u User
		if err := ch.Decode(&u); err != nil {
			return err
		}
		fmt.Println("change:", ch.Operation, u.Name, "still matches:", ch.Matches)
	case <-ctx.Done():
		return ctx.Err()
	}

	if err := c.Delete(ctx, "public", "users", ada.ID, nil); err != nil {
		return err
	}
	err = c.ReadOne(ctx, "public", "users", ada.ID, &ada)
	var e *mqttspec.Error
	if errors.As(err, &e) {
		fmt.Println("read after delete:", e.Code)
	}
	return nil
}
