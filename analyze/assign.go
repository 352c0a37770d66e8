package analyze

// minCostAssign solves the assignment problem for an n×m cost matrix
// (n ≤ m, row-major in cost): it returns, for each row, the column that
// minimises the total cost with no column used twice. Forbidden pairs carry
// a cost no solution should pay (the caller gives every row a column of its
// own as a way out). It is the Hungarian method with potentials (Kuhn–
// Munkres, O(n²m)); ties go to the lower index, so the answer depends on
// the input order only, never on chance.
func minCostAssign(cost []float64, n, m int) []int {
	if n == 0 {
		return nil
	}
	const inf = 1e300
	u := make([]float64, n+1)
	v := make([]float64, m+1)
	p := make([]int, m+1) // p[j]: row (1-based) holding column j; p[0] the row being placed
	way := make([]int, m+1)
	minv := make([]float64, m+1)
	used := make([]bool, m+1)
	for i := 1; i <= n; i++ {
		p[0] = i
		j0 := 0
		for j := range minv {
			minv[j], used[j] = inf, false
		}
		for {
			used[j0] = true
			i0, delta, j1 := p[j0], inf, 0
			for j := 1; j <= m; j++ {
				if used[j] {
					continue
				}
				if cur := cost[(i0-1)*m+j-1] - u[i0] - v[j]; cur < minv[j] {
					minv[j], way[j] = cur, j0
				}
				if minv[j] < delta {
					delta, j1 = minv[j], j
				}
			}
			for j := 0; j <= m; j++ {
				if used[j] {
					u[p[j]] += delta
					v[j] -= delta
				} else {
					minv[j] -= delta
				}
			}
			j0 = j1
			if p[j0] == 0 {
				break
			}
		}
		for j0 != 0 {
			j1 := way[j0]
			p[j0] = p[j1]
			j0 = j1
		}
	}
	out := make([]int, n)
	for j := 1; j <= m; j++ {
		if p[j] != 0 {
			out[p[j]-1] = j - 1
		}
	}
	return out
}
