package adapters_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/mqttspec/mqttspec/internal/testdb"
	"github.com/mqttspec/mqttspec/query"
)

// DescBase is embedded by descModel.
type DescBase struct {
	ID        uint      `gorm:"primaryKey" bun:"id,pk,autoincrement" json:"id"`
	CreatedAt time.Time `json:"created_at"`
}

// descModel exercises what each ORM reads from its own tags: a column
// renamed by tag, a field skipped by tag, an embedded struct and a hidden
// column.
type descModel struct {
	bun.BaseModel `bun:"table:desc_models" json:"-"`
	DescBase
	UserID   int    `json:"user_id"`
	HTTPCode int    `json:"http_code"`
	Count    int    `gorm:"column:cnt" bun:"cnt" json:"count"`
	Skipped  string `gorm:"-" bun:"-" json:"skipped"`
	Secret   string `json:"-"`
}

// descOwner has a relation.
type descOwner struct {
	ID    uint       `gorm:"primaryKey" bun:"id,pk,autoincrement" json:"id"`
	Parts []descPart `gorm:"foreignKey:ModelID" bun:"rel:has-many,join:id=model_id" json:"parts"`
}

type descPart struct {
	ID      uint `gorm:"primaryKey" bun:"id,pk,autoincrement" json:"id"`
	ModelID uint `json:"model_id"`
}

// descNamed chooses its table the GORM way (TableName) and the Bun way.
type descNamed struct {
	bun.BaseModel `bun:"table:custom_named"`
	Key           string `gorm:"primaryKey" bun:"key,pk" json:"key"`
}

func (descNamed) TableName() string { return "custom_named" }

type descTwoKeys struct {
	A int `gorm:"primaryKey" bun:"a,pk"`
	B int `gorm:"primaryKey" bun:"b,pk"`
}

// TestDescribe checks that each adapter describes models as its ORM maps
// them.
func TestDescribe(t *testing.T) {
	for _, k := range []testdb.Kind{testdb.All()[0], testdb.All()[1]} { // the ORM decides, not the database
		t.Run(k.ORM, func(t *testing.T) {
			db := testdb.Open(t, k)
			m, err := db.Describe("shop.models", &descModel{})
			require.NoError(t, err)
			var cols []string
			for _, c := range m.Columns {
				cols = append(cols, c.Name)
			}
			require.Equal(t, []string{"id", "created_at", "user_id", "http_code", "cnt", "secret"}, cols)
			require.Equal(t, []int{1, 0}, m.PrimaryKey.Index, "the key inside the embedded struct")
			require.Equal(t, "desc_models", m.Table)
			require.Equal(t, "shop", m.Schema)
			c, ok := m.Column("count")
			require.True(t, ok)
			require.Equal(t, "cnt", c.Name)
			_, ok = m.Column("secret")
			require.False(t, ok, "a json:\"-\" column is stored but not addressable")
			require.Empty(t, m.Relations)
			owner, err := db.Describe("owners", &descOwner{})
			require.NoError(t, err)
			rel, ok := owner.Relation("parts")
			require.True(t, ok)
			require.True(t, rel.Many)
			require.Equal(t, "Parts", rel.Name)

			named, err := db.Describe("named", descNamed{})
			require.NoError(t, err)
			require.Equal(t, "custom_named", named.Table)
			require.Equal(t, "key", named.PrimaryKey.Name)

			_, err = db.Describe("two", descTwoKeys{})
			require.ErrorIs(t, err, query.ErrInvalidModel)
			_, err = db.Describe("number", 5)
			require.ErrorIs(t, err, query.ErrInvalidModel)
			_, err = db.Describe("nil", nil)
			require.ErrorIs(t, err, query.ErrInvalidModel)
		})
	}
}
