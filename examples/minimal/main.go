// Command minimal is the README's quick start: public.users served over
// MQTT by the embedded broker, from an SQLite file.
package main

import (
	"log"

	"github.com/libtnb/sqlite" // pure-Go SQLite for GORM (modernc.org/sqlite)
	"gorm.io/gorm"

	"github.com/mqttspec/mqttspec"
)

type User struct {
	ID     uint   `json:"id" gorm:"primaryKey"`
	Name   string `json:"name"`
	Email  string `json:"email"`
	Status string `json:"status"`
}

func main() {
	db, err := gorm.Open(sqlite.Open("file:app.db?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"), &gorm.Config{})
	if err != nil {
		log.Fatal(err)
	}
	if err := db.AutoMigrate(&User{}); err != nil {
		log.Fatal(err)
	}

	handler, err := mqttspec.NewHandlerWithGORM(db) // embedded broker on localhost:1883
	if err != nil {
		log.Fatal(err)
	}
	if err := handler.Registry().RegisterModel("public.users", &User{}); err != nil {
		log.Fatal(err)
	}
	if err := handler.Start(); err != nil { // returns once clients can connect
		log.Fatal(err)
	}
	defer handler.Shutdown()
	select {}
}
