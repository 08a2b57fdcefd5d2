//! A small dense simplex for `maximise c·y subject to A y ≤ 1, y ≥ 0`.
//!
//! That is the only LP shape the share prices need (the dual of the cutting-stock problem,
//! one row per packing pattern), and its right-hand side of ones makes `y = 0` feasible, so
//! there is no phase one. Sizes are tiny (tens of columns, at most a few hundred rows) and
//! the problem is solved once per workload, so a plain tableau with Bland's rule — slow in
//! theory, but it cannot cycle on these highly degenerate problems — is the right tool.

/// Values below this are zero: the inputs are small rationals, far above this scale.
const EPS: f64 = 1e-9;

/// An optimal `y` of `maximise objective·y s.t. row·y ≤ 1 for every row, y ≥ 0`, or `None`
/// if the problem is unbounded (some column has no positive entry in any row), malformed
/// (a row of the wrong length, a non-finite number) or not solved within `max_pivots`.
pub(super) fn maximise_under_unit_rows(
    objective: &[f64],
    rows: &[Vec<f64>],
    max_pivots: usize,
) -> Option<Vec<f64>> {
    let n = objective.len();
    let m = rows.len();
    let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
    if !finite(objective) || rows.iter().any(|r| r.len() != n || !finite(r)) {
        return None;
    }
    // Tableau: each row is [structural columns | slack columns | rhs]; the basis starts as
    // the slacks. `cost` holds the reduced costs of the same columns (positive = improving).
    let width = n + m + 1;
    let mut tableau: Vec<Vec<f64>> = rows
        .iter()
        .enumerate()
        .map(|(r, row)| {
            let mut t = vec![0.0; width];
            for (cell, a) in t.iter_mut().zip(row) {
                *cell = *a;
            }
            if let Some(slack) = t.get_mut(n + r) {
                *slack = 1.0;
            }
            if let Some(rhs) = t.last_mut() {
                *rhs = 1.0;
            }
            t
        })
        .collect();
    let mut cost: Vec<f64> = objective.to_vec();
    cost.resize(n + m, 0.0);
    let mut basis: Vec<usize> = (n..n + m).collect();

    for _ in 0..max_pivots {
        // Bland: the lowest-index improving column enters …
        let Some(enter) = cost.iter().position(|c| *c > EPS) else {
            return Some(solution(&tableau, &basis, n));
        };
        // … and among the rows that bound it most tightly, the one whose basic variable has
        // the lowest index leaves.
        let mut leave: Option<(usize, f64)> = None;
        for (r, row) in tableau.iter().enumerate() {
            let (Some(a), Some(rhs)) = (row.get(enter), row.last()) else {
                continue;
            };
            if *a <= EPS {
                continue;
            }
            let ratio = rhs / a;
            let better = leave.is_none_or(|(best_r, best)| {
                ratio < best - EPS || (ratio <= best + EPS && basis.get(r) < basis.get(best_r))
            });
            if better {
                leave = Some((r, ratio));
            }
        }
        let (pivot_row, _) = leave?;
        pivot(&mut tableau, &mut cost, pivot_row, enter);
        if let Some(b) = basis.get_mut(pivot_row) {
            *b = enter;
        }
    }
    None
}

/// Make column `col` basic in row `row`.
fn pivot(tableau: &mut [Vec<f64>], cost: &mut [f64], row: usize, col: usize) {
    let Some(pivot_row) = tableau.get(row).cloned() else {
        return;
    };
    let Some(&p) = pivot_row.get(col) else {
        return;
    };
    let pivot_row: Vec<f64> = pivot_row.iter().map(|x| x / p).collect();
    for (r, other) in tableau.iter_mut().enumerate() {
        if r == row {
            other.clone_from(&pivot_row);
            continue;
        }
        let factor = other.get(col).copied().unwrap_or(0.0);
        if factor != 0.0 {
            for (x, pr) in other.iter_mut().zip(&pivot_row) {
                *x -= factor * pr;
            }
        }
    }
    let factor = cost.get(col).copied().unwrap_or(0.0);
    // The cost row has no rhs entry: zip stops at its end.
    for (c, pr) in cost.iter_mut().zip(&pivot_row) {
        *c -= factor * pr;
    }
}

/// The structural variables' values: basic ones read from their row's rhs, others zero.
fn solution(tableau: &[Vec<f64>], basis: &[usize], n: usize) -> Vec<f64> {
    let mut y = vec![0.0; n];
    for (row, var) in tableau.iter().zip(basis) {
        if let (Some(slot), Some(rhs)) = (y.get_mut(*var), row.last()) {
            *slot = rhs.max(0.0);
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_a_textbook_problem() {
        // max 3a + 2b s.t. a + b ≤ 1, 2a ≤ 1 (i.e. a ≤ 0.5): a = 0.5, b = 0.5, value 2.5.
        let y =
            maximise_under_unit_rows(&[3.0, 2.0], &[vec![1.0, 1.0], vec![2.0, 0.0]], 100).unwrap();
        assert!(
            (y[0] - 0.5).abs() < 1e-12 && (y[1] - 0.5).abs() < 1e-12,
            "{y:?}"
        );
    }

    #[test]
    fn degenerate_rows_do_not_cycle() {
        // Many rows through the same vertex.
        let rows = vec![
            vec![1.0, 1.0, 1.0],
            vec![2.0, 2.0, 2.0],
            vec![1.0, 2.0, 3.0],
            vec![3.0, 2.0, 1.0],
            vec![2.0, 0.0, 0.0],
            vec![0.0, 2.0, 0.0],
            vec![0.0, 0.0, 2.0],
        ];
        let y = maximise_under_unit_rows(&[1.0, 1.0, 1.0], &rows, 1000).unwrap();
        let value: f64 = y.iter().sum();
        assert!((value - 0.5).abs() < 1e-12, "{y:?}");
        for row in &rows {
            let lhs: f64 = row.iter().zip(&y).map(|(a, b)| a * b).sum();
            assert!(lhs <= 1.0 + 1e-12);
        }
    }

    #[test]
    fn unbounded_and_malformed_problems_have_no_solution() {
        assert_eq!(
            maximise_under_unit_rows(&[1.0, 1.0], &[vec![1.0, 0.0]], 100),
            None,
            "the second column is unbounded"
        );
        assert_eq!(
            maximise_under_unit_rows(&[1.0], &[vec![1.0, 2.0]], 100),
            None
        );
        assert_eq!(
            maximise_under_unit_rows(&[f64::NAN], &[vec![1.0]], 100),
            None
        );
    }
}
