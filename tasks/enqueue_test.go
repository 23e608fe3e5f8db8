package tasks

import (
	"slices"
	"testing"
)

// While one wake-up is being enqueued, the lanes later requests accept work
// on, whichever partners they are, wait for one more wake-up that carries
// them all under the latest transaction id: a process queues one task per
// Redis round trip, not one per lane.
func TestWakeupsCarryEveryLaneMarkedMeanwhile(t *testing.T) {
	var w wakeups
	if !w.mark(7, "txn_1") {
		t.Fatal("the first mark must enqueue")
	}
	for i, lane := range []int64{9, 3, 9, 7} {
		if w.mark(lane, "txn_"+string(rune('2'+i))) {
			t.Fatalf("mark of lane %d enqueued while an enqueue was in flight", lane)
		}
	}
	id, lanes := w.next()
	if id != "txn_5" || !slices.Equal(lanes, []int64{3, 7, 9}) {
		t.Fatalf("next: %q %v, want txn_5 [3 7 9]", id, lanes)
	}
	if id, lanes := w.next(); id != "" || lanes != nil {
		t.Fatalf("next with nothing marked: %q %v", id, lanes)
	}
	if !w.mark(3, "txn_6") {
		t.Fatal("a mark after the enqueues ended must enqueue")
	}
}
