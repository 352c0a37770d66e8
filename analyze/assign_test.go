package analyze

import (
	"math/rand"
	"testing"
)

// bruteAssign tries every injection of rows into columns.
func bruteAssign(cost []float64, n, m int) float64 {
	best := 1e308
	used := make([]bool, m)
	var rec func(i int, sum float64)
	rec = func(i int, sum float64) {
		if i == n {
			best = min(best, sum)
			return
		}
		for j := 0; j < m; j++ {
			if !used[j] {
				used[j] = true
				rec(i+1, sum+cost[i*m+j])
				used[j] = false
			}
		}
	}
	rec(0, 0)
	return best
}

func TestMinCostAssign(t *testing.T) {
	// Greedy takes (0,0) at 1 and leaves row 1 with 100; the optimum
	// crosses: 2+2.
	if got := minCostAssign([]float64{1, 2, 2, 100}, 2, 2); got[0] != 1 || got[1] != 0 {
		t.Errorf("crossing case: %v, want [1 0]", got)
	}
	r := rand.New(rand.NewSource(1))
	for k := 0; k < 300; k++ {
		n := 1 + r.Intn(5)
		m := n + r.Intn(3)
		cost := make([]float64, n*m)
		for i := range cost {
			cost[i] = float64(r.Intn(20))
			if r.Intn(4) == 0 {
				cost[i] = 1e12 // forbidden
			}
		}
		got := minCostAssign(cost, n, m)
		seen := map[int]bool{}
		sum := 0.0
		for i, j := range got {
			if j < 0 || j >= m || seen[j] {
				t.Fatalf("case %d: not an assignment: %v", k, got)
			}
			seen[j] = true
			sum += cost[i*m+j]
		}
		if want := bruteAssign(cost, n, m); sum != want {
			t.Fatalf("case %d: cost %v, optimum %v (%v)", k, sum, want, got)
		}
		if again := minCostAssign(cost, n, m); !equalInts(again, got) {
			t.Fatalf("case %d: two runs differ", k)
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
