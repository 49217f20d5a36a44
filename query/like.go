package query

import (
	"unicode"
	"unicode/utf8"
)

// likePattern is a compiled like pattern: `%` any run of characters, `_`
// exactly one character, `\` escapes the next character; with fold,
// characters compare after unicode.ToLower (strings.ToLower of both sides,
// character by character).
//
// Matching costs a bounded amount of work whatever the pattern: the pattern
// is split at `%` into segments, the first and last anchored where the
// pattern does not start or end with `%`, and the segments in between are
// found leftmost first (a later `%` absorbs whatever lies before it, so the
// leftmost match of each segment is never wrong). A segment is found with
// the bit-parallel Shift-And algorithm, `_` included, in
// O(len(s) * ceil(len(segment)/64)) steps, so with patterns capped at
// maxPatternBytes it is at most a few dozen word operations per character
// of the value. Compiled once by BuildWhere, a pattern matches without
// allocating (for segments up to 256 characters).
type likePattern struct {
	src         string
	fold        bool
	segs        []likeSegment
	lead, trail bool // the pattern starts / ends with %
}

// likeSegment is the part of a pattern between two %.
type likeSegment struct {
	runes []rune            // likeAny for _
	masks map[rune][]uint64 // Shift-And masks by character
	any   []uint64          // the mask of a character not in the segment
}

// likeAny stands for `_` in a segment.
const likeAny rune = -1

// compileLike compiles the valid like pattern p.
func compileLike(p string, fold bool) *likePattern {
	lp := &likePattern{src: p, fold: fold}
	cur := []rune{}
	for i := 0; i < len(p); {
		switch p[i] {
		case '%':
			lp.lead = lp.lead || i == 0
			lp.trail = i == len(p)-1
			lp.segs = append(lp.segs, newLikeSegment(cur))
			cur = []rune{}
			i++
			continue
		case '_':
			cur = append(cur, likeAny)
			i++
			continue
		case '\\':
			if i+1 < len(p) {
				i++
			}
		}
		r, w := utf8.DecodeRuneInString(p[i:])
		if fold {
			r = unicode.ToLower(r)
		}
		cur = append(cur, r)
		i += w
	}
	lp.segs = append(lp.segs, newLikeSegment(cur))
	return lp
}

func newLikeSegment(runes []rune) likeSegment {
	words := (len(runes) + 63) / 64
	seg := likeSegment{runes: runes, masks: map[rune][]uint64{}, any: make([]uint64, words)}
	for i, r := range runes {
		if r == likeAny {
			seg.any[i/64] |= 1 << (i % 64)
		}
	}
	for i, r := range runes {
		if r == likeAny {
			continue
		}
		m, ok := seg.masks[r]
		if !ok {
			m = append([]uint64(nil), seg.any...)
			seg.masks[r] = m
		}
		m[i/64] |= 1 << (i % 64)
	}
	return seg
}

// likeMatch reports whether s matches the valid like pattern p.
func likeMatch(p, s string, fold bool) bool { return compileLike(p, fold).match(s) }

// match reports whether s matches the pattern.
func (lp *likePattern) match(s string) bool {
	segs := lp.segs
	if len(segs) == 1 { // no % at all: the whole value
		end, ok := lp.at(s, 0, segs[0].runes)
		return ok && end == len(s)
	}
	pos, end := 0, len(s)
	if !lp.lead {
		next, ok := lp.at(s, 0, segs[0].runes)
		if !ok {
			return false
		}
		pos, segs = next, segs[1:]
	}
	if !lp.trail {
		lastRunes := segs[len(segs)-1].runes
		tail := runeOffsetFromEnd(s, len(lastRunes))
		if tail < pos {
			return false
		}
		if _, ok := lp.at(s, tail, lastRunes); !ok {
			return false
		}
		end, segs = tail, segs[:len(segs)-1]
	}
	for i := range segs {
		if len(segs[i].runes) == 0 {
			continue
		}
		next, ok := lp.find(s[pos:end], &segs[i])
		if !ok {
			return false
		}
		pos += next
	}
	return true
}

// at matches seg at byte offset off of s and returns the offset after it.
func (lp *likePattern) at(s string, off int, seg []rune) (int, bool) {
	for _, want := range seg {
		if off >= len(s) {
			return 0, false
		}
		r, w := utf8.DecodeRuneInString(s[off:])
		if lp.fold {
			r = unicode.ToLower(r)
		}
		if want != likeAny && want != r {
			return 0, false
		}
		off += w
	}
	return off, true
}

// find returns the byte offset just after the leftmost match of seg (not
// empty) in s. Bit i of the Shift-And state is set when seg[:i+1] matches
// the characters ending at the current one.
func (lp *likePattern) find(s string, seg *likeSegment) (int, bool) {
	k := len(seg.runes)
	var buf [4]uint64
	state := buf[:0]
	if words := len(seg.any); words <= len(buf) {
		state = buf[:words]
	} else {
		state = make([]uint64, words)
	}
	top, topBit := (k-1)/64, uint64(1)<<((k-1)%64)
	for off := 0; off < len(s); {
		r, w := utf8.DecodeRuneInString(s[off:])
		off += w
		if lp.fold {
			r = unicode.ToLower(r)
		}
		m, ok := seg.masks[r]
		if !ok {
			m = seg.any
		}
		carry := uint64(1) // a match may start at every character
		for i := range state {
			next := state[i] >> 63
			state[i] = (state[i]<<1 | carry) & m[i]
			carry = next
		}
		if state[top]&topBit != 0 {
			return off, true
		}
	}
	return 0, false
}

// runeOffsetFromEnd returns the byte offset at which the last n runes of s
// start, or -1 when s has fewer.
func runeOffsetFromEnd(s string, n int) int {
	off := len(s)
	for ; n > 0; n-- {
		if off == 0 {
			return -1
		}
		_, w := utf8.DecodeLastRuneInString(s[:off])
		off -= w
	}
	return off
}
