//! What experiments read off curves: where a curve crosses a level (N*,
//! THEORY §13), a least-squares line, and quantiles of a sample.

/// The first x where `points` (in the order given) pass `level` from below,
/// by linear interpolation in log x (x > 0); the first x itself when its
/// value already reaches `level`; None when the curve never does. Used for
/// N* (GL = 0.5 over N, THEORY §13), memorization onsets over training steps
/// and clone levels over sigma (walked from large to small).
pub fn crossing(points: &[(f64, f64)], level: f64) -> Option<f64> {
    if let Some(&(x, v)) = points.first() {
        if v >= level {
            return Some(x);
        }
    }
    points.windows(2).find_map(|w| {
        let ((x0, v0), (x1, v1)) = (w[0], w[1]);
        (v0 < level && v1 >= level).then(|| log_lerp(x0, x1, (level - v0) / (v1 - v0)))
    })
}

/// The first x where `points` (ascending x > 0) change sign, in either
/// direction, by linear interpolation in log x; None when they never do.
/// Used for the noise level where two denoiser gaps are equal (THEORY §8).
pub fn sign_change(points: &[(f64, f64)]) -> Option<f64> {
    points.windows(2).find_map(|w| {
        let ((x0, v0), (x1, v1)) = (w[0], w[1]);
        (v0.signum() != v1.signum()).then(|| log_lerp(x0, x1, v0 / (v0 - v1)))
    })
}

/// The point a fraction `t` of the way from x0 to x1 in log x.
fn log_lerp(x0: f64, x1: f64, t: f64) -> f64 {
    (x0.log2() + t * (x1.log2() - x0.log2())).exp2()
}

/// Least-squares slope and intercept of y on x; None for fewer than two
/// points or when all x are equal.
pub fn least_squares(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let k = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let (mx, my) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), p| (a + p.0 / k, b + p.1 / k));
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| (sxy / sxx, my - sxy / sxx * mx))
}

/// The q-quantile of an ascending sample, nearest rank (index round(q (m - 1)));
/// None for an empty sample.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    sorted
        .get(((q * last as f64).round() as usize).min(last))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossing_is_geometric_between_neighbours() {
        // 0.25 at 4, 0.75 at 64: halfway in log2, at 16.
        let x = crossing(&[(4.0, 0.25), (64.0, 0.75)], 0.5).unwrap();
        assert!((x - 16.0).abs() < 1e-12);
        assert_eq!(crossing(&[(4.0, 0.1), (8.0, 0.2)], 0.5), None);
        assert_eq!(crossing(&[(2.0, 0.7), (8.0, 0.9)], 0.5), Some(2.0));
        // A curve walked from large to small x (clone levels over sigma).
        let x = crossing(&[(8.0, 0.0), (2.0, 1.0)], 0.5).unwrap();
        assert!((x - 4.0).abs() < 1e-12);
    }

    #[test]
    fn sign_change_finds_the_first_root_in_either_direction() {
        // ln(x / 10) on a log grid: the root is exactly 10, whichever sign comes first.
        let rising: Vec<(f64, f64)> = [1.0, 4.0, 16.0, 64.0]
            .iter()
            .map(|&x: &f64| (x, (x / 10.0).ln()))
            .collect();
        assert!((sign_change(&rising).unwrap() - 10.0).abs() < 1e-9);
        let falling: Vec<(f64, f64)> = rising.iter().map(|&(x, v)| (x, -v)).collect();
        assert!((sign_change(&falling).unwrap() - 10.0).abs() < 1e-9);
        assert_eq!(sign_change(&[(1.0, 1.0), (2.0, 0.5)]), None);
    }

    #[test]
    fn least_squares_recovers_a_line_and_refuses_degenerate_input() {
        let points: Vec<(f64, f64)> = (0..5).map(|i| (i as f64, 3.0 * i as f64 - 2.0)).collect();
        let (slope, intercept) = least_squares(&points).unwrap();
        assert!((slope - 3.0).abs() < 1e-12 && (intercept + 2.0).abs() < 1e-12);
        assert_eq!(least_squares(&points[..1]), None);
        assert_eq!(least_squares(&[(1.0, 0.0), (1.0, 2.0)]), None);
    }

    #[test]
    fn quantile_takes_the_nearest_rank() {
        let sorted: Vec<f64> = (0..=10).map(f64::from).collect();
        assert_eq!(quantile(&sorted, 0.26), Some(3.0)); // index round(2.6)
        assert_eq!(quantile(&sorted, 0.975), Some(10.0)); // index round(9.75)
        assert_eq!(quantile(&sorted, 0.0), Some(0.0));
        assert_eq!(quantile(&[7.0], 0.5), Some(7.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
