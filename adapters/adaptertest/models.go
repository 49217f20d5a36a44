package adaptertest

import "github.com/uptrace/bun"

// Item is the main model of the suite: an auto-increment key, a nullable
// unique code, numbers, a bool, a nullable text and a text column with a
// database default. Its gorm and bun tags describe the same table, so
// either ORM can create it and both read it identically.
type Item struct {
	bun.BaseModel `bun:"table:items,alias:item" json:"-"`

	ID     int64   `gorm:"primaryKey;autoIncrement" bun:"id,pk,autoincrement" json:"id"`
	Name   string  `gorm:"not null" bun:"name,notnull" json:"name"`
	Code   *string `gorm:"uniqueIndex" bun:"code,unique" json:"code"`
	Qty    int64   `gorm:"not null" bun:"qty,notnull" json:"qty"`
	Price  float64 `gorm:"not null" bun:"price,notnull" json:"price"`
	Active bool    `gorm:"not null" bun:"active,notnull" json:"active"`
	Note   *string `bun:"note" json:"note"`
	Status string  `gorm:"not null;default:'new'" bun:"status,notnull,default:'new'" json:"status"`
}

// Widget has a string primary key the caller chooses (a UUID).
type Widget struct {
	bun.BaseModel `bun:"table:widgets,alias:widget" json:"-"`

	ID    string `gorm:"primaryKey" bun:"id,pk" json:"id"`
	Label string `gorm:"not null" bun:"label,notnull" json:"label"`
	Size  int64  `gorm:"not null" bun:"size,notnull" json:"size"`
}

// Owner has many Pets (a preloadable relation).
type Owner struct {
	bun.BaseModel `bun:"table:owners,alias:owner" json:"-"`

	ID   int64  `gorm:"primaryKey;autoIncrement" bun:"id,pk,autoincrement" json:"id"`
	Name string `gorm:"not null" bun:"name,notnull" json:"name"`
	Pets []Pet  `gorm:"foreignKey:OwnerID" bun:"rel:has-many,join:id=owner_id" json:"pets,omitempty"`
}

// Pet belongs to an Owner.
type Pet struct {
	bun.BaseModel `bun:"table:pets,alias:pet" json:"-"`

	ID      int64  `gorm:"primaryKey;autoIncrement" bun:"id,pk,autoincrement" json:"id"`
	OwnerID int64  `gorm:"not null;index" bun:"owner_id,notnull" json:"owner_id"`
	Name    string `gorm:"not null" bun:"name,notnull" json:"name"`
}

// Models returns the models the open function given to Run must migrate
// (create tables for), owners before pets.
func Models() []any { return []any{&Item{}, &Widget{}, &Owner{}, &Pet{}} }
