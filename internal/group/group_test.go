package group

import (
	"fmt"
	"testing"
)

func TestOwnerIsTheSameForEveryMember(t *testing.T) {
	a, b, c := New("a"), New("b"), New("c")
	for _, m := range []*Members{a, b, c} {
		for _, id := range []string{"a", "b", "c"} {
			m.Join(id)
		}
	}
	for i := range 1000 {
		id := fmt.Sprintf("client-%d", i)
		if oa, ob, oc := a.Owner(id), b.Owner(id), c.Owner(id); oa != ob || ob != oc {
			t.Fatalf("%s: owners differ: %s %s %s", id, oa, ob, oc)
		}
	}
}

func TestClientsSpreadAndOnlyTheLeaversMove(t *testing.T) {
	m := New("a")
	m.Join("b")
	m.Join("c")
	before := map[string]string{}
	count := map[string]int{}
	for i := range 3000 {
		id := fmt.Sprintf("device-%d", i)
		before[id] = m.Owner(id)
		count[before[id]]++
	}
	for _, member := range []string{"a", "b", "c"} {
		if n := count[member]; n < 800 || n > 1200 {
			t.Errorf("member %s serves %d of 3000 clients; want about 1000", member, n)
		}
	}
	if !m.Leave("b") || m.Leave("b") {
		t.Fatal("Leave should report a change once")
	}
	moved := 0
	for id, was := range before {
		now := m.Owner(id)
		if was != "b" && now != was {
			t.Fatalf("%s moved from %s to %s though %s stayed", id, was, now, was)
		}
		if was == "b" {
			if now == "b" {
				t.Fatalf("%s still owned by the member that left", id)
			}
			moved++
		}
	}
	if moved != count["b"] {
		t.Fatalf("moved %d, want %d", moved, count["b"])
	}
}

func TestMembership(t *testing.T) {
	m := New("me")
	if !m.Owns("anyone") {
		t.Fatal("a member alone owns every client")
	}
	if m.Join("me") || m.Join("") {
		t.Fatal("joining self or an empty id changes nothing")
	}
	if !m.Join("x") || m.Join("x") {
		t.Fatal("Join should report a change once")
	}
	if !m.Has("x") || !m.Has("me") || m.Has("y") {
		t.Fatal("Has")
	}
	if got := m.List(); len(got) != 2 || got[0] != "me" || got[1] != "x" {
		t.Fatalf("List = %v", got)
	}
	m.Reset()
	if got := m.List(); len(got) != 1 {
		t.Fatalf("after Reset List = %v", got)
	}
	if Owner(nil, "c") != "" {
		t.Fatal("no members, no owner")
	}
}
