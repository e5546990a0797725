//! Orders for semantic and hybrid search: items by cosine score, and reciprocal rank
//! fusion (Cormack et al. 2009) of several ranked lists.

use super::catalog::ItemId;
use std::collections::HashMap;

/// The constant of reciprocal rank fusion: `score = Σ 1 / (K + rank)`, rank from 1.
pub const RRF_K: f32 = 60.0;

/// `candidates` that have a score, best first (ties keep candidate order), at most
/// `limit` of them (`0` = all).
pub fn by_score(candidates: &[ItemId], scores: &[f32], limit: usize) -> Vec<ItemId> {
    let score = |id: ItemId| scores.get(id as usize).copied().unwrap_or(f32::NAN);
    let mut ranked: Vec<(usize, ItemId)> = candidates
        .iter()
        .enumerate()
        .filter(|&(_, &id)| !score(id).is_nan())
        .map(|(i, &id)| (i, id))
        .collect();
    let order = |a: &(usize, ItemId), b: &(usize, ItemId)| {
        score(b.1).total_cmp(&score(a.1)).then(a.0.cmp(&b.0))
    };
    if limit > 0 && ranked.len() > limit {
        ranked.select_nth_unstable_by(limit - 1, order);
        ranked.truncate(limit);
    }
    ranked.sort_by(order);
    ranked.into_iter().map(|(_, id)| id).collect()
}

/// Fuse ranked lists: every item of any list, by `Σ 1/(RRF_K + rank)` over the lists
/// holding it, best first (ties by first appearance). Returns (item, fused score).
pub fn rrf(lists: &[&[ItemId]]) -> Vec<(ItemId, f32)> {
    let mut score: HashMap<ItemId, (f32, usize)> = HashMap::new();
    let mut seen = 0usize;
    for list in lists {
        for (rank, &id) in list.iter().enumerate() {
            let e = score.entry(id).or_insert_with(|| {
                seen += 1;
                (0.0, seen)
            });
            e.0 += 1.0 / (RRF_K + rank as f32 + 1.0);
        }
    }
    let mut out: Vec<(ItemId, f32, usize)> = score
        .into_iter()
        .map(|(id, (s, first))| (id, s, first))
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
    out.into_iter().map(|(id, s, _)| (id, s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_score_sorts_limits_and_drops_unscored() {
        let scores = [0.1, f32::NAN, 0.9, 0.5, 0.9];
        assert_eq!(by_score(&[0, 1, 2, 3, 4], &scores, 0), vec![2, 4, 3, 0]);
        assert_eq!(by_score(&[4, 3, 2], &scores, 2), vec![4, 2]);
        assert_eq!(by_score(&[0, 7], &scores, 0), vec![0]);
    }

    #[test]
    fn rrf_matches_hand_computed_scores() {
        // a = [1, 2, 3], b = [3, 1]:
        // 1: 1/61 + 1/62 = 0.032522; 3: 1/63 + 1/61 = 0.032266; 2: 1/62 = 0.016129.
        let fused = rrf(&[&[1, 2, 3], &[3, 1]]);
        let ids: Vec<ItemId> = fused.iter().map(|f| f.0).collect();
        assert_eq!(ids, vec![1, 3, 2]);
        let want = [1.0 / 61.0 + 1.0 / 62.0, 1.0 / 63.0 + 1.0 / 61.0, 1.0 / 62.0];
        for (f, w) in fused.iter().zip(want) {
            assert!((f.1 - w).abs() < 1e-7, "{f:?} vs {w}");
        }
        // Equal scores keep first appearance: 5 then 6.
        let tie: Vec<ItemId> = rrf(&[&[5], &[6]]).iter().map(|f| f.0).collect();
        assert_eq!(tie, vec![5, 6]);
    }
}
