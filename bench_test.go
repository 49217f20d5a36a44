package mqttspec_test

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// benchClient sends a request and waits for its answer, one at a time.
type benchClient struct {
	c       mqtt.Client
	topic   string
	answers chan []byte
}

func newBenchClient(b *testing.B, url, id string) *benchClient {
	bc := &benchClient{topic: "spec/" + id + "/request", answers: make(chan []byte, 1)}
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(id)
	bc.c = mqtt.NewClient(o)
	if tok := bc.c.Connect(); !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		b.Fatalf("connect: %v", tok.Error())
	}
	b.Cleanup(func() { bc.c.Disconnect(10) })
	tok := bc.c.Subscribe("spec/"+id+"/response", 1, func(_ mqtt.Client, m mqtt.Message) { bc.answers <- m.Payload() })
	if !tok.WaitTimeout(waitTimeout) || tok.Error() != nil {
		b.Fatalf("subscribe: %v", tok.Error())
	}
	return bc
}

func (bc *benchClient) roundTrip(b *testing.B, payload []byte) {
	bc.c.Publish(bc.topic, 1, false, payload)
	select {
	case raw := <-bc.answers:
		var r struct {
			Success bool `json:"success"`
		}
		if json.Unmarshal(raw, &r) != nil || !r.Success {
			b.Fatalf("bad answer %s", raw)
		}
	case <-time.After(waitTimeout):
		b.Fatal("no answer")
	}
}

// BenchmarkReadByID measures a QoS 1 read-by-id round trip through the
// embedded broker and GORM on SQLite: "serial" is one client waiting for
// each answer (ns/op = round-trip time); "parallel" is 16 such clients
// (requests/s = 1e9 / ns/op).
func BenchmarkReadByID(b *testing.B) {
	srv := startServer(b, nil)
	for i := 0; i < 100; i++ {
		if err := srv.db.Create(&User{Name: fmt.Sprint("u", i), Status: "active"}).Error; err != nil {
			b.Fatal(err)
		}
	}
	payload := []byte(`{"id":"b","type":"request","operation":"read","schema":"public","entity":"users","record_id":"42"}`)
	b.Run("serial", func(b *testing.B) {
		bc := newBenchClient(b, srv.url, "bench-serial")
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			bc.roundTrip(b, payload)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		var n atomic.Int32
		b.SetParallelism(8) // 8 × GOMAXPROCS clients
		b.RunParallel(func(pb *testing.PB) {
			bc := newBenchClient(b, srv.url, fmt.Sprint("bench-par-", n.Add(1)))
			for pb.Next() {
				bc.roundTrip(b, payload)
			}
		})
	})
}
