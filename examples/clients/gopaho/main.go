// Command gopaho is a paho.mqtt.golang client of the quickstart: it reads the
// active users and prints the answer. (The client package,
// github.com/mqttspec/mqttspec/client, does the correlation, timeouts and
// live views for you; this shows the protocol with plain paho.)
//
//	go run ./examples/clients/gopaho   # MQTT_URL, default tcp://localhost:1883
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

func main() {
	url := os.Getenv("MQTT_URL")
	if url == "" {
		url = "tcp://localhost:1883"
	}
	clientID := "go-1"
	answers := make(chan mqtt.Message, 1)
	opts := mqtt.NewClientOptions().AddBroker(url).SetClientID(clientID).
		SetUsername("go-user").SetPassword("") // a token in the username, empty password
	client := mqtt.NewClient(opts)
	if tok := client.Connect(); tok.Wait() && tok.Error() != nil {
		fmt.Fprintln(os.Stderr, "connect:", tok.Error())
		os.Exit(1)
	}
	defer client.Disconnect(100)
	client.Subscribe("spec/"+clientID+"/response", 1, func(_ mqtt.Client, m mqtt.Message) { answers <- m }).Wait()

	request, _ := json.Marshal(map[string]any{
		"id": "read-1", "type": "request", "operation": "read", "schema": "public", "entity": "users",
		"options": map[string]any{
			"filters": []map[string]any{{"column": "status", "operator": "eq", "value": "active"}},
		},
	})
	client.Publish("spec/"+clientID+"/request", 1, false, request).Wait()

	select {
	case m := <-answers:
		var answer struct {
			ID       string           `json:"id"`
			Success  bool             `json:"success"`
			Data     []map[string]any `json:"data"`
			Metadata map[string]any   `json:"metadata"`
		}
		if err := json.Unmarshal(m.Payload(), &answer); err != nil {
			fmt.Fprintln(os.Stderr, "answer:", err)
			os.Exit(1)
		}
		fmt.Println("response", answer.ID, answer.Success, "total", answer.Metadata["total"])
	case <-time.After(10 * time.Second):
		fmt.Fprintln(os.Stderr, "no answer")
		os.Exit(1)
	}
}
