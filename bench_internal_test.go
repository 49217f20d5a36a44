package mqttspec

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/glebarez/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/mqttspec/mqttspec/adapters"
)

// BenchmarkWriteWithSubscriptions measures an update through the handler's
// request path (no MQTT) with 0 and with 10,000 equality subscriptions on
// other values of the filtered column plus one that matches. The index makes
// the 10,000 non-matching subscriptions cost close to nothing.
func BenchmarkWriteWithSubscriptions(b *testing.B) {
	for _, n := range []int{0, 10000} {
		b.Run(fmt.Sprintf("subscriptions=%d", n), func(b *testing.B) {
			dsn := "file:" + filepath.Join(b.TempDir(), "b.db") + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
			db, err := gorm.Open(sqlite.Open(dsn), &gorm.Config{Logger: logger.Discard})
			if err != nil {
				b.Fatal(err)
			}
			if err := db.AutoMigrate(&device{}); err != nil {
				b.Fatal(err)
			}
			if err := db.Create(&device{ID: 1, Room: "kitchen"}).Error; err != nil {
				b.Fatal(err)
			}
			h, err := NewHandlerWithGORM(db)
			if err != nil {
				b.Fatal(err)
			}
			if err := h.Registry().RegisterModel("iot.devices", &device{}); err != nil {
				b.Fatal(err)
			}
			m, _ := h.resolveModel("iot", "devices")
			for i := 0; i < n; i++ {
				h.subs.add(newTestSub(b, m, fmt.Sprint("s", i), adapters.FilterOption{Column: "room", Operator: "eq", Value: fmt.Sprint("room-", i)}))
			}
			if n > 0 {
				h.subs.add(newTestSub(b, m, "match", adapters.FilterOption{Column: "room", Operator: "eq", Value: "kitchen"}))
			}
			client := NewClient("bench", "", h)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				msg := &Message{ID: "u", Type: MessageTypeRequest, Operation: OperationUpdate, Schema: "iot", Entity: "devices",
					RecordID: "1", Data: map[string]any{"temp": i}}
				if resp := h.process(client, msg); resp == nil || !resp.Success {
					b.Fatalf("update failed: %+v", resp)
				}
			}
		})
	}
}
